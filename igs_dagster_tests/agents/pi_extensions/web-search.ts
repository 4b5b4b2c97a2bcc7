// A pi extension like the web-search extensions users install into ~/.pi/agent/extensions/:
// it registers a `web_search` tool. Plain pi has no web tool (0.73.1 offers read, bash, edit,
// write), so the tests put this in the temporary HOME to check that our default pi command
// line keeps extension discovery on. It answers from WEB_SEARCH_RESULTS_URL (the scripted
// server on 127.0.0.1), never from the internet.
import type { ExtensionAPI } from "@mariozechner/pi-coding-agent";
import { Type } from "typebox";

export default function (pi: ExtensionAPI) {
  pi.registerTool({
    name: "web_search",
    label: "Web search",
    description: "Search the web; returns titles, URLs and snippets.",
    parameters: Type.Object({ query: Type.String({ description: "What to search for" }) }),
    async execute(_toolCallId, params) {
      const base = process.env.WEB_SEARCH_RESULTS_URL ?? "";
      const response = await fetch(`${base}?q=${encodeURIComponent(params.query)}`);
      const text = await response.text();
      return { content: [{ type: "text", text }], details: {} };
    },
  });
}
