/**
 * `Result<T>`: a value or a one-line, user-facing error, for the edges (argv, SITE strings, files)
 * where errors are values rather than exceptions.
 * @module
 */

/** A value or a one-line, user-facing error message. Used at the edges (argv, SITE strings, files). */
export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

/** Wraps a value as a successful {@linkcode Result}. */
export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

/** Wraps a one-line error message as a failed {@linkcode Result}. */
export function err<T = never>(error: string): Result<T> {
  return { ok: false, error };
}
