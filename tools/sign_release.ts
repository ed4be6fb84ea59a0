/**
 * Signs every file a release uploads with minisign, the way the Go sidekick's releases are signed,
 * and checks each signature against the committed public key right away.
 *
 * ```sh
 * # what the release workflow runs after `deno task compile:all`
 * MINISIGN_SECRET_KEY="$(cat minisign.key)" MINISIGN_PASSWORD=… \
 *   deno run -q --allow-read --allow-write --allow-env=MINISIGN_SECRET_KEY,MINISIGN_PASSWORD \
 *   --allow-run=minisign tools/sign_release.ts
 * # options: --dist DIR (default dist), --secret-key FILE (instead of MINISIGN_SECRET_KEY),
 * #          --public-key FILE (default: minisign.pub at the repository root)
 * ```
 *
 * The files are the binaries of the target table in `tools/compile.ts` and `SHA256SUMS`; each gets
 * `<file>.minisig` beside it. The secret key comes as the contents of the key file (a repository
 * secret cannot be a file) and is written to a private temporary file for minisign, removed again
 * afterwards. minisign asks for the password on the terminal, or reads one line from stdin when
 * stdin is not a terminal: that is how it gets it here.
 *
 * Every failure is one line on stderr and exit code 1: minisign missing, no key or password, a
 * release file missing, a wrong password, a signature that does not verify with the public key
 * (a secret key that does not belong to the committed minisign.pub), or a stray `sidekick-*` file
 * the upload would take without a signature.
 * @module
 */

import { DIST, TARGETS } from "./compile.ts";

/** The checksum file `tools/compile.ts --all` writes beside the binaries. */
export const SUMS = "SHA256SUMS";

/** What minisign appends to a file's name for its signature. */
export const SIG_SUFFIX = ".minisig";

/** The environment variable that holds the secret key file's contents. */
export const SECRET_KEY_ENV = "MINISIGN_SECRET_KEY";

/** The environment variable that holds the secret key's password. */
export const PASSWORD_ENV = "MINISIGN_PASSWORD";

/**
 * The `deno run` flags the release runs this script with. `-q` keeps Deno's own notice about a
 * missing `minisign` off stderr, so that failure stays one line.
 */
export const RUN_FLAGS: readonly string[] = Object.freeze([
  "-q",
  "--allow-read",
  "--allow-write",
  `--allow-env=${SECRET_KEY_ENV},${PASSWORD_ENV}`,
  "--allow-run=minisign",
]);

/** The files a release signs: every binary of the target table, then `SHA256SUMS`. */
export function releaseFiles(): string[] {
  return [...TARGETS.map((t) => t.artifact), SUMS];
}

/** The signature file name of a release file. */
export function signatureOf(file: string): string {
  return `${file}${SIG_SUFFIX}`;
}

/** Everything the release uploads: each release file followed by its signature. */
export function uploadFiles(): string[] {
  return releaseFiles().flatMap((f) => [f, signatureOf(f)]);
}

/** The key line (base64) of a minisign public key file, or undefined if it is not one. */
export function publicKeyOf(text: string): string | undefined {
  const lines = text.replaceAll("\r\n", "\n").trim().split("\n");
  if (lines.length !== 2 || !lines[0].startsWith("untrusted comment:")) return undefined;
  const key = lines[1].trim();
  // "Ed", an 8-byte key id and a 32-byte Ed25519 key.
  return decodedLength(key) === 42 && key.startsWith("RW") ? key : undefined;
}

function decodedLength(base64: string): number | undefined {
  try {
    return atob(base64).length;
  } catch {
    return undefined;
  }
}

/** Why a text is not a minisign secret key file, or undefined if it looks like one. */
export function secretKeyProblem(text: string): string | undefined {
  const lines = text.replaceAll("\r\n", "\n").trim().split("\n");
  if (publicKeyOf(text) !== undefined) return "it is a public key, not the secret key";
  if (lines.length !== 2 || !lines[0].startsWith("untrusted comment:")) {
    return "expected the two lines of a minisign key file ('untrusted comment: …' and the key)";
  }
  // Algorithm, KDF and checksum ids, salt, KDF limits, key id, secret key, checksum: 158 bytes.
  if (decodedLength(lines[1].trim()) !== 158) {
    return "its second line is not a 158-byte base64 minisign secret key";
  }
  return undefined;
}

/** A failure reported as one line. */
class SignError extends Error {}

interface Options {
  dist: string;
  secretKey?: string;
  publicKey: string | URL;
}

function parse(args: string[]): Options {
  // The committed key, wherever the script is started from.
  const o: Options = { dist: DIST, publicKey: new URL("../minisign.pub", import.meta.url) };
  for (let i = 0; i < args.length; i++) {
    const [name, inline] = args[i].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new SignError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case "--dist":
        o.dist = value();
        break;
      case "--secret-key":
        o.secretKey = value();
        break;
      case "--public-key":
        o.publicKey = value();
        break;
      default:
        throw new SignError(
          `unknown argument '${args[i]}' (use --dist DIR, --secret-key FILE, --public-key FILE)`,
        );
    }
  }
  return o;
}

/** minisign's stderr as one line: its password prompts dropped, the rest joined. */
function oneLine(stderr: Uint8Array): string {
  return new TextDecoder().decode(stderr).replace(/Password[^:\n]*:\s*/g, "").split("\n")
    .map((l) => l.trim()).filter((l) => l !== "").join("; ");
}

async function minisign(args: string[], stdin?: string): Promise<Deno.CommandOutput> {
  try {
    const child = new Deno.Command("minisign", {
      args,
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (stdin !== undefined) {
      const w = child.stdin.getWriter();
      // minisign may exit before reading (a broken key file); its own message says why.
      await w.write(new TextEncoder().encode(stdin)).then(() => w.close()).catch(() => {});
    }
    return await child.output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new SignError("minisign is not installed (apt-get install minisign)");
    }
    throw e;
  }
}

/** A path for messages: the committed public key by its name in the repository. */
function shown(path: string | URL): string {
  return path instanceof URL ? "minisign.pub" : path;
}

async function readText(path: string | URL, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new SignError(`cannot read ${what} ${shown(path)}: ${(e as Error).message}`);
  }
}

async function sign(o: Options): Promise<string[]> {
  // Checked before anything else so a missing tool is reported as such, not as a key problem.
  await minisign(["-v"]);

  const publicKey = publicKeyOf(await readText(o.publicKey, "the public key"));
  if (!publicKey) throw new SignError(`${shown(o.publicKey)} is not a minisign public key file`);

  let keyText: string;
  let keySource: string;
  if (o.secretKey !== undefined) {
    keyText = await readText(o.secretKey, "the secret key");
    keySource = o.secretKey;
  } else {
    keyText = Deno.env.get(SECRET_KEY_ENV) ?? "";
    keySource = SECRET_KEY_ENV;
    // An Actions secret that was never set arrives as an empty string.
    if (keyText.trim() === "") {
      throw new SignError(
        `no secret key: set ${SECRET_KEY_ENV} to the contents of the minisign secret key file ` +
          "or pass --secret-key FILE",
      );
    }
  }
  const problem = secretKeyProblem(keyText);
  if (problem) throw new SignError(`${keySource} is not a minisign secret key: ${problem}`);

  const password = (Deno.env.get(PASSWORD_ENV) ?? "").replace(/\r?\n$/, "");
  if (password === "") throw new SignError(`no password: set ${PASSWORD_ENV}`);
  if (/[\r\n]/.test(password)) throw new SignError(`${PASSWORD_ENV} must be a single line`);

  const files = releaseFiles();
  const paths = files.map((f) => `${o.dist}/${f}`);
  for (const path of paths) {
    try {
      if (!(await Deno.stat(path)).isFile) throw new SignError(`${path} is not a file`);
    } catch (e) {
      if (e instanceof SignError) throw e;
      throw new SignError(`${path} is missing; build the release first (deno task compile:all)`);
    }
  }
  // The upload takes dist/sidekick-* by pattern: anything else matching it would go out unsigned.
  const expected = new Set(uploadFiles());
  for await (const entry of Deno.readDir(o.dist)) {
    if (entry.name.startsWith("sidekick-") && !expected.has(entry.name)) {
      throw new SignError(
        `${o.dist}/${entry.name} is not in the target table of tools/compile.ts; the upload ` +
          "would publish it without a signature",
      );
    }
  }

  const dir = await Deno.makeTempDir({ prefix: "sidekick-sign-" });
  try {
    const keyFile = `${dir}/minisign.key`;
    await Deno.writeTextFile(keyFile, keyText.replaceAll("\r\n", "\n").trim() + "\n", {
      mode: 0o600,
    });
    const signed = await minisign(["-S", "-s", keyFile, "-m", ...paths], `${password}\n`);
    if (signed.code !== 0) {
      throw new SignError(`minisign -S failed (exit ${signed.code}): ${oneLine(signed.stderr)}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  for (const path of paths) {
    const checked = await minisign(["-V", "-q", "-P", publicKey, "-m", path]);
    if (checked.code !== 0) {
      throw new SignError(
        `${signatureOf(path)} does not verify with ${shown(o.publicKey)} (${
          oneLine(checked.stderr)
        }); ` +
          "the secret key does not belong to this public key",
      );
    }
  }
  return paths;
}

/** Runs the script with command-line arguments; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    const o = parse(args);
    const paths = await sign(o);
    for (const path of paths) console.log(`signed ${signatureOf(path)} (verified)`);
    return 0;
  } catch (e) {
    if (!(e instanceof SignError)) throw e;
    console.error(`sign_release: ${e.message}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
