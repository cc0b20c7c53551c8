// Exporting a simulation as a scenario file: the server writes the YAML; these helpers
// pick where it goes (next to the policy) and hand it to the browser as a download.

/** The folder part of a POSIX path ("" for a bare name). */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/** Where "save next to the policy" writes ``filename`` for the policy at ``policyPath``. */
export function besidePolicy(policyPath: string, filename: string): string {
  const base = filename.split("/").pop() ?? filename;
  const dir = dirname(policyPath);
  return dir ? `${dir}/${base}` : base;
}

/** A file name that is safe to offer as a download (no folders, ends in .yaml). */
export function downloadName(filename: string): string {
  let base = (filename.split(/[\\/]/).pop() ?? "").replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^\.+/, "");
  if (!base) base = "scenario";
  if (!/\.ya?ml$/.test(base)) base += ".yaml";
  return base;
}

/** Offer ``text`` to the user as a file named ``filename`` (a Blob and a temporary link). */
export function download(doc: Document, filename: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: "application/yaml" }));
  const a = doc.createElement("a");
  a.href = url;
  a.download = downloadName(filename);
  doc.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
