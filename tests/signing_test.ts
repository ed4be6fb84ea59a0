/**
 * Release signing: `tools/sign_release.ts` is run exactly as the release workflow runs it (same
 * `deno run` flags, key and password in the same environment variables) over a temporary `dist/`
 * holding every release file, with a throwaway key pair; then minisign itself checks the result.
 *
 * The tests that need minisign are ignored, with the reason in their names, where it is not
 * installed (Debian/Ubuntu package `minisign`, which `.ci/run` and the release workflow install).
 */

import assert from "node:assert/strict";
import {
  PASSWORD_ENV,
  publicKeyOf,
  releaseFiles,
  RUN_FLAGS,
  SECRET_KEY_ENV,
  secretKeyProblem,
  SIG_SUFFIX,
  signatureOf,
  SUMS,
  uploadFiles,
} from "../tools/sign_release.ts";
import { TARGETS } from "../tools/compile.ts";
import { needing, probeTool } from "./helpers/tools.ts";

const SCRIPT = new URL("../tools/sign_release.ts", import.meta.url).href;
const PASSWORD = "correct horse battery staple";
const dec = new TextDecoder();

const MINISIGN = await probeTool("minisign", ["-v"], "apt-get install minisign");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs minisign with `input` on stdin. */
async function minisign(args: string[], input = ""): Promise<Run> {
  const child = new Deno.Command("minisign", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(input)).then(() => w.close()).catch(() => {});
  const out = await child.output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `minisign -V` of `file` (signature beside it) against a public key given as its key line. */
const verify = (file: string, publicKey: string) => minisign(["-V", "-P", publicKey, "-m", file]);

/** Runs tools/sign_release.ts the way the release does; unset variables are passed empty. */
async function signRelease(
  cwd: string,
  env: { key?: string; password?: string; path?: string },
  args: string[] = [],
): Promise<Run> {
  const vars: Record<string, string> = {
    [SECRET_KEY_ENV]: env.key ?? "",
    [PASSWORD_ENV]: env.password ?? "",
  };
  if (env.path !== undefined) vars.PATH = env.path;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...RUN_FLAGS, SCRIPT, ...args],
    cwd,
    env: vars,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A failure of the script: exit 1 and exactly one line on stderr, which is returned. */
function oneLineFailure(run: Run): string {
  assert.equal(run.code, 1, `exit code; stderr: ${run.stderr}`);
  const lines = run.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `one line on stderr, got: ${run.stderr}`);
  assert.match(lines[0], /^sign_release: /);
  return lines[0];
}

/** A dist/ with every release file, each with different contents (some not text). */
async function makeDist(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/dist`, { recursive: true });
  for (const [i, name] of releaseFiles().entries()) {
    await Deno.writeFile(
      `${dir}/dist/${name}`,
      new Uint8Array([0x7f, 0x45, 0x4c, 0x46, i, 0, 255]),
    );
  }
}

interface Fixture {
  dir: string;
  /** The throwaway pair's public key file and its key line. */
  pubFile: string;
  publicKey: string;
  /** The encrypted secret key file's contents. */
  secretKey: string;
  /** A second pair, unencrypted (no slow key derivation), that did not sign anything. */
  otherPublicKey: string;
  otherSecretKey: string;
  /** The script's run over dist/ with the first pair. */
  run: Run;
}

/** Key pairs and one signed dist/ in `dir`. */
async function signed(dir: string): Promise<Fixture> {
  const keys = `${dir}/keys`;
  await Deno.mkdir(keys);
  // minisign reads the password (twice for -G) from stdin when stdin is not a terminal.
  const gen = await minisign(
    ["-G", "-p", `${keys}/minisign.pub`, "-s", `${keys}/minisign.key`],
    `${PASSWORD}\n${PASSWORD}\n`,
  );
  assert.equal(gen.code, 0, gen.stderr);
  const other = await minisign(["-G", "-W", "-p", `${keys}/other.pub`, "-s", `${keys}/other.key`]);
  assert.equal(other.code, 0, other.stderr);
  const publicKey = publicKeyOf(await Deno.readTextFile(`${keys}/minisign.pub`));
  const otherPublicKey = publicKeyOf(await Deno.readTextFile(`${keys}/other.pub`));
  assert.ok(publicKey && otherPublicKey);
  await makeDist(dir);
  const secretKey = await Deno.readTextFile(`${keys}/minisign.key`);
  const run = await signRelease(dir, { key: secretKey, password: PASSWORD }, [
    "--public-key",
    `${keys}/minisign.pub`,
  ]);
  return {
    dir,
    pubFile: `${keys}/minisign.pub`,
    publicKey,
    secretKey,
    otherPublicKey,
    otherSecretKey: await Deno.readTextFile(`${keys}/other.key`),
    run,
  };
}

Deno.test("sign_release: every binary of the target table and SHA256SUMS, each with a .minisig", () => {
  assert.deepEqual(releaseFiles(), [...TARGETS.map((t) => t.artifact), "SHA256SUMS"]);
  assert.equal(SUMS, "SHA256SUMS");
  assert.equal(signatureOf("sidekick-windows-arm64.exe"), "sidekick-windows-arm64.exe.minisig");
  const upload = uploadFiles();
  assert.equal(upload.length, 2 * releaseFiles().length);
  for (const f of releaseFiles()) {
    assert.ok(upload.includes(f) && upload.includes(`${f}${SIG_SUFFIX}`), f);
  }
  assert.deepEqual(RUN_FLAGS, [
    "-q",
    "--allow-read",
    "--allow-write",
    "--allow-env=MINISIGN_SECRET_KEY,MINISIGN_PASSWORD",
    "--allow-run=minisign",
  ]);
});

Deno.test("sign_release: key files told apart (public, secret, neither)", async () => {
  const committed = await Deno.readTextFile(new URL("../minisign.pub", import.meta.url));
  const key = publicKeyOf(committed);
  assert.ok(key, "minisign.pub is a minisign public key file");
  assert.equal(publicKeyOf(committed.replaceAll("\n", "\r\n")), key, "CRLF checkout");
  assert.equal(publicKeyOf(key), undefined, "the key line alone is not a file");
  assert.equal(publicKeyOf(`untrusted comment: x\n${key.slice(0, -4)}`), undefined, "truncated");
  assert.match(secretKeyProblem(committed) ?? "", /public key/);
  assert.match(secretKeyProblem("RWQ...") ?? "", /two lines/);
  const fakeSecret = `untrusted comment: minisign encrypted secret key\n${
    btoa("\0".repeat(158))
  }\n`;
  assert.equal(secretKeyProblem(fakeSecret), undefined);
  assert.equal(secretKeyProblem(fakeSecret.replaceAll("\n", "\r\n")), undefined, "CRLF");
  assert.match(
    secretKeyProblem(`untrusted comment: x\n${btoa("\0".repeat(157))}`) ?? "",
    /158-byte/,
  );
});

Deno.test("sign_release: without minisign on PATH it fails in one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sidekick-signing-" });
  try {
    await makeDist(dir);
    const empty = `${dir}/empty-path`;
    await Deno.mkdir(empty);
    const line = oneLineFailure(await signRelease(dir, { key: "x", password: "y", path: empty }));
    assert.equal(line, "sign_release: minisign is not installed (apt-get install minisign)");
    for await (const e of Deno.readDir(`${dir}/dist`)) assert.ok(!e.name.endsWith(SIG_SUFFIX));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  ...needing(
    "sign_release: a throwaway key pair, a dist/ signed as the release does, checked by minisign",
    MINISIGN,
  ),
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "sidekick-signing-" });
    try {
      const f = await signed(dir);
      await t.step(
        "signs every release file; minisign -V accepts each with the public key",
        async () => {
          assert.equal(f.run.code, 0, f.run.stderr);
          assert.deepEqual(
            f.run.stdout.trim().split("\n"),
            releaseFiles().map((name) => `signed dist/${signatureOf(name)} (verified)`),
          );
          const names = [];
          for await (const e of Deno.readDir(`${f.dir}/dist`)) names.push(e.name);
          assert.deepEqual(names.sort(), uploadFiles().sort(), "dist/ holds exactly the upload");
          for (const name of releaseFiles()) {
            // As a user does it: the key line on the command line (README), and the key file.
            const byKey = await verify(`${f.dir}/dist/${name}`, f.publicKey);
            assert.equal(byKey.code, 0, `${name}: ${byKey.stderr}`);
            assert.match(
              byKey.stdout,
              new RegExp(`Trusted comment: .*\\bfile:${name.replaceAll(".", "\\.")}\\b`),
            );
            const byFile = await minisign(["-V", "-p", f.pubFile, "-m", `${f.dir}/dist/${name}`]);
            assert.equal(byFile.code, 0, `${name}: ${byFile.stderr}`);
          }
        },
      );
      await t.step("a tampered file and a wrong public key fail verification", async () => {
        assert.equal(f.run.code, 0, f.run.stderr);
        const dist = `${f.dir}/dist`;
        const tampered = `${f.dir}/tampered`;
        await Deno.mkdir(tampered);
        for (const name of ["sidekick-linux-amd64", SUMS]) {
          const bytes = await Deno.readFile(`${dist}/${name}`);
          bytes[bytes.length - 1] ^= 1;
          await Deno.writeFile(`${tampered}/${name}`, bytes);
          await Deno.copyFile(`${dist}/${signatureOf(name)}`, `${tampered}/${signatureOf(name)}`);
          const bad = await verify(`${tampered}/${name}`, f.publicKey);
          assert.notEqual(bad.code, 0, `tampered ${name} verified`);
          assert.match(bad.stderr, /verification failed/i);
        }
        // Another key pair: minisign refuses on the key id before any arithmetic.
        const other = await verify(`${dist}/sidekick-linux-amd64`, f.otherPublicKey);
        assert.notEqual(other.code, 0, "verified with another key pair's public key");
        // The right key id with another key's bytes: the Ed25519 check itself has to fail.
        const raw = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
        const forged = raw(f.publicKey);
        forged.set(raw(f.otherPublicKey).subarray(10), 10);
        const forgedKey = btoa(String.fromCharCode(...forged));
        assert.notEqual(forgedKey, f.publicKey);
        const wrong = await verify(`${dist}/sidekick-linux-amd64`, forgedKey);
        assert.notEqual(wrong.code, 0, "verified with a forged public key");
        assert.match(wrong.stderr, /verification failed/i);
      });
      await t.step("fails in one line without a key or password, or with a wrong one", async () => {
        const dir = await Deno.makeTempDir({ prefix: "sidekick-signing-" });
        try {
          await makeDist(dir);
          const pub = ["--public-key", f.pubFile];
          assert.match(
            oneLineFailure(await signRelease(dir, { password: PASSWORD }, pub)),
            /no secret key: set MINISIGN_SECRET_KEY .* or pass --secret-key FILE$/,
          );
          assert.match(
            oneLineFailure(await signRelease(dir, { key: f.secretKey }, pub)),
            /no password: set MINISIGN_PASSWORD$/,
          );
          assert.match(
            oneLineFailure(
              await signRelease(
                dir,
                { key: await Deno.readTextFile(f.pubFile), password: "x" },
                pub,
              ),
            ),
            /MINISIGN_SECRET_KEY is not a minisign secret key: it is a public key/,
          );
          // A secret key that does not belong to the public key: signing works, verifying does not.
          assert.match(
            oneLineFailure(
              await signRelease(dir, { key: f.otherSecretKey, password: "unused" }, pub),
            ),
            /sidekick-linux-amd64\.minisig does not verify with .*minisign\.pub .*does not belong/,
          );
          assert.match(
            oneLineFailure(await signRelease(dir, { key: f.secretKey, password: "wrong" }, pub)),
            /minisign -S failed \(exit \d+\): Wrong password/,
          );
          await Deno.remove(`${dir}/dist/sidekick-darwin-arm64`);
          assert.match(
            oneLineFailure(await signRelease(dir, { key: f.secretKey, password: PASSWORD }, pub)),
            /dist\/sidekick-darwin-arm64 is missing/,
          );
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
