/**
 * Why a file named by a flag (a certificate, a key, a CA bundle) could not be read, in words for
 * a one-line error.
 * @module
 */

/** A short reason for a failed file read: "no such file", "is a directory", … */
export function readError(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  if (e instanceof Deno.errors.NotCapable) return "not allowed to read it (--allow-read)";
  if (e instanceof Error) return e.message;
  return String(e);
}
