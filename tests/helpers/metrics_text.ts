/**
 * Reading a Prometheus exposition in tests: the sum of the samples whose line starts with a
 * prefix (a metric name with the start of its labels), so a test can ask for one series or
 * all series of a family.
 * @module
 */

/** The sum of the sample values of the lines of `text` that start with `prefix`. */
export function sumSamples(text: string, prefix: string): number {
  return text.split("\n").filter((l) => l.startsWith(prefix))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/** Scrapes `<url>/.prometheus/metrics` and sums the samples that start with `prefix`. */
export async function scrapeSum(
  url: string,
  prefix: string,
  client?: Deno.HttpClient,
): Promise<number> {
  const res = await fetch(`${url}/.prometheus/metrics`, client ? { client } : {});
  return sumSamples(await res.text(), prefix);
}
