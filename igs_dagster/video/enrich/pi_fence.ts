// The enrichment's fence for pi (loaded with `pi -e pi_fence.ts`, issue 23). pi itself has no
// sandbox: this extension blocks, before they run, every `bash` call and every file tool call
// (read, edit, write, and any tool with a `path`) whose target lies outside the folders named
// in PI_FENCE_ROOTS (a JSON list: the enrichment's workspace and its skills). Paths are resolved
// as pi's own tools resolve them (`@` prefix, `~`, relative to the working folder), then with
// symlinks followed, so no name or link leads out. A call it cannot judge is blocked. At start it
// leaves the model only read, edit and write, plus the tools of the user's own extensions (a web
// search) when PI_FENCE_RESEARCH is 1.
import { existsSync, realpathSync } from "node:fs";
import * as os from "node:os";
import { basename, dirname, isAbsolute, resolve, sep } from "node:path";
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";

const ROOTS: string[] = (() => {
  try {
    const parsed = JSON.parse(process.env.PI_FENCE_ROOTS ?? "[]");
    return Array.isArray(parsed) ? parsed.map((root: string) => real(resolve(root))) : [];
  } catch {
    return [];
  }
})();

function real(path: string): string {
  // the nearest existing ancestor, symlinks resolved, with the rest appended
  let probe = path;
  const rest: string[] = [];
  while (!existsSync(probe) && dirname(probe) !== probe) {
    rest.unshift(basename(probe));
    probe = dirname(probe);
  }
  const base = existsSync(probe) ? realpathSync(probe) : probe;
  return rest.length ? resolve(base, ...rest) : base;
}

function target(raw: string, cwd: string): string {
  let path = raw.replace(/[\u00A0\u2000-\u200A\u202F\u205F\u3000]/g, " ");
  if (path.startsWith("@")) path = path.slice(1);
  if (path === "~") path = os.homedir();
  else if (path.startsWith("~/")) path = os.homedir() + path.slice(1);
  return real(isAbsolute(path) ? path : resolve(cwd, path));
}

function inside(path: string): boolean {
  return ROOTS.some((root) => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep));
}

const FILE_TOOLS = ["read", "edit", "write"];

export default function (pi: ExtensionAPI) {
  pi.on("session_start", async () => {
    const research = process.env.PI_FENCE_RESEARCH === "1";
    const keep = pi.getAllTools().filter((tool) => FILE_TOOLS.includes(tool.name) || (research
      && tool.sourceInfo?.source !== "builtin" && tool.sourceInfo?.source !== "sdk"));
    pi.setActiveTools(keep.map((tool) => tool.name));
  });
  pi.on("tool_call", async (event, ctx) => {
    if (event.toolName === "bash") {
      return { block: true, reason: "no shell during enrichment: edit the note with the file tools" };
    }
    const input = (event.input ?? {}) as Record<string, unknown>;
    const raw = input.path ?? input.file_path;
    if (raw === undefined) {
      return undefined; // no file involved (the user's web tools in research mode)
    }
    if (typeof raw !== "string" || !ROOTS.length || !inside(target(raw, ctx.cwd))) {
      return { block: true, reason: `${String(raw)} is outside the enrichment's workspace` };
    }
    return undefined;
  });
}
