/**
 * A doubly linked list through its entries, for the per-request sets of the data plane (attempts
 * waiting for a deadline, exchanges in flight): joining and leaving are a few field writes.
 *
 * Why not a `Set`: a long-lived `Set` that each request joins and leaves keeps what its entries
 * reach alive through V8's young-generation collections longer than the request does. With the
 * waiting attempts (each reaching its client's request) and the exchanges in flight in `Set`s,
 * the scavenger promoted about 2 KB per request to the old generation; with these lists, 0.7 KB
 * (about what a bare proxy with the same fetch signal promotes), and GC time per request halved.
 * @module
 */

/** The fields an entry carries for its list (`undefined` and `false` while outside one). */
export interface Link<T> {
  /** The entry before it. */
  prev: T | undefined;
  /** The entry after it. */
  next: T | undefined;
  /** Whether it is in a list now. */
  linked: boolean;
}

/** Entries in the order they were added, newest first; removal by entry in constant time. */
export class LinkedList<T extends Link<T>> {
  #head: T | undefined;
  #size = 0;

  /** Entries in the list. */
  get size(): number {
    return this.#size;
  }

  /** Adds `entry` (not in a list yet) at the front. */
  add(entry: T): void {
    const head = this.#head;
    entry.prev = undefined;
    entry.next = head;
    entry.linked = true;
    if (head !== undefined) head.prev = entry;
    this.#head = entry;
    this.#size++;
  }

  /** Removes `entry`; false (and nothing changes) when it is not in the list. */
  delete(entry: T): boolean {
    if (!entry.linked) return false;
    const { prev, next } = entry;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next !== undefined) next.prev = prev;
    entry.prev = entry.next = undefined;
    entry.linked = false;
    this.#size--;
    return true;
  }

  /** The entries now, newest first, as an array: the caller may remove or add entries meanwhile. */
  entries(): T[] {
    const out: T[] = [];
    for (let e = this.#head; e !== undefined; e = e.next) out.push(e);
    return out;
  }
}
