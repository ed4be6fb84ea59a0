import assert from "node:assert/strict";
import { type Link, LinkedList } from "../lib/shared/linked_list.ts";

interface Item extends Link<Item> {
  name: string;
}

const item = (name: string): Item => ({ name, prev: undefined, next: undefined, linked: false });
const names = (list: LinkedList<Item>) => list.entries().map((e) => e.name);

Deno.test("LinkedList: entries newest first; removal from the front, the middle and the back", () => {
  const list = new LinkedList<Item>();
  const [a, b, c, d] = ["a", "b", "c", "d"].map(item);
  for (const e of [a, b, c, d]) list.add(e);
  assert.equal(list.size, 4);
  assert.deepEqual(names(list), ["d", "c", "b", "a"]);
  assert.equal(list.delete(c), true, "middle");
  assert.deepEqual(names(list), ["d", "b", "a"]);
  assert.equal(list.delete(d), true, "front");
  assert.deepEqual(names(list), ["b", "a"]);
  assert.equal(list.delete(a), true, "back");
  assert.deepEqual(names(list), ["b"]);
  assert.equal(list.size, 1);
  assert.equal(list.delete(b), true);
  assert.equal(list.size, 0);
  assert.deepEqual(names(list), []);
});

Deno.test("LinkedList: deleting twice, or an entry never added, changes nothing", () => {
  const list = new LinkedList<Item>();
  const [a, b] = ["a", "b"].map(item);
  list.add(a);
  list.add(b);
  assert.equal(list.delete(a), true);
  assert.equal(list.delete(a), false, "already out");
  assert.equal(list.delete(item("x")), false, "never in");
  assert.equal(list.size, 1);
  assert.deepEqual(names(list), ["b"]);
  assert.equal(a.prev, undefined, "an entry that left holds no neighbours");
  assert.equal(a.next, undefined);
  list.add(a); // and may join again
  assert.deepEqual(names(list), ["a", "b"]);
});

Deno.test("LinkedList: entries() is a snapshot, so entries can leave or join while it is walked", () => {
  const list = new LinkedList<Item>();
  const all = ["a", "b", "c"].map(item);
  for (const e of all) list.add(e);
  const seen: string[] = [];
  for (const e of list.entries()) {
    seen.push(e.name);
    list.delete(e);
    if (e.name === "c") list.add(item("late"));
  }
  assert.deepEqual(seen, ["c", "b", "a"]);
  assert.deepEqual(names(list), ["late"]);
  assert.equal(list.size, 1);
});
