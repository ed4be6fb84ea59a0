/**
 * Sets `version` in deno.json, so that `sidekick --version` (which prints deno.json's version) and
 * the JSR package carry the release tag. Only the version string is rewritten; the rest of the
 * file is left byte for byte.
 *
 * ```sh
 * deno run --allow-read=deno.json --allow-write=deno.json tools/set_version.ts v1.2.3
 * deno run --allow-read=deno.json --allow-write=deno.json tools/set_version.ts "$GITHUB_REF_NAME"
 * ```
 * @module
 */

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

/** `v1.2.3` or `1.2.3` → `1.2.3`; undefined when it is not a semantic version. */
export function versionFromTag(tag: string): string | undefined {
  const v = tag.trim().replace(/^refs\/tags\//, "").replace(/^v/, "");
  return SEMVER.test(v) ? v : undefined;
}

/** deno.json text with its top-level `"version"` replaced; throws if there is none. */
export function withVersion(configText: string, version: string): string {
  const parsed = JSON.parse(configText);
  if (typeof parsed.version !== "string") throw new Error('deno.json has no "version" string');
  const re = /^(\s*"version"\s*:\s*)"[^"]*"/m;
  const updated = configText.replace(re, `$1${JSON.stringify(version)}`);
  if (JSON.parse(updated).version !== version) {
    throw new Error("could not rewrite the top-level version of deno.json");
  }
  return updated;
}

if (import.meta.main) {
  const [tag, path = "deno.json"] = Deno.args;
  const version = tag === undefined ? undefined : versionFromTag(tag);
  if (version === undefined) {
    console.error(`set_version: '${tag ?? ""}' is not a version like v1.2.3`);
    Deno.exit(2);
  }
  await Deno.writeTextFile(path, withVersion(await Deno.readTextFile(path), version));
  console.log(`${path}: version ${version}`);
}
