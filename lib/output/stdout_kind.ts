/**
 * Whether standard output can be written synchronously without ever holding up the proxy.
 *
 * An asynchronous `Deno.stdout.write` hands each write to a blocking thread and back: about 50 µs
 * of CPU per call on Linux, against 1 to 4 µs for `writeSync`, which made trace lines (default
 * output, one per request) cost about 5 % of a small GET's CPU. A synchronous write can stall
 * the isolate only when a reader is slow — a pipe or socket whose buffer is full, a terminal
 * paused with Ctrl-S — so it is used only where there is no reader to wait for: a regular file
 * or a device such as `/dev/null` (the usual place for a sidecar's stdout under systemd, Docker
 * json-file logging goes through a pipe and stays asynchronous).
 *
 * The test is `lseek(1, 0, SEEK_CUR)`: it succeeds on files and on `/dev/null`, and fails with
 * `ESPIPE` on pipes, sockets and terminals. It needs Linux and `--allow-ffi` (reading
 * `/proc/self/fd/1` would need every permission); anywhere else the answer is no, and stdout is
 * written asynchronously as before.
 * @module
 */

/** `whence` for `lseek`: from the current position (Linux). */
const SEEK_CUR = 1;

/** Whether stdout is a regular file or a device that never makes a writer wait (see above). */
export function stdoutNeverWaits(): boolean {
  if (Deno.build.os !== "linux" || Deno.stdout.isTerminal()) return false;
  // Asking dlopen without the permission would prompt on a terminal: check first.
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return false;
  let libc;
  try {
    libc = Deno.dlopen(
      "libc.so.6",
      {
        lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
      } as const,
    );
  } catch {
    return false;
  }
  try {
    return Number(libc.symbols.lseek(1, 0n, SEEK_CUR)) >= 0;
  } finally {
    libc.close();
  }
}
