// Parse Mermaid files with Mermaid's own parser, in Node, without a browser.
//
//   node tests/support/mermaid_parse.mjs FILE...
//
// Prints "FILE: ok <diagram type>" or "FILE: INVALID <parser message>" per file; exits 1 when any
// file is invalid. Mermaid sanitizes label text with DOMPurify, which needs a DOM window: in Node its
// default export has no hooks, so the three methods Mermaid calls are stubbed (sanitizing has no
// bearing on syntax). Parsing, including the diagram database's checks, is Mermaid's.
import { readFileSync } from 'node:fs';
import DOMPurify from 'dompurify';

if (typeof DOMPurify.addHook !== 'function') {
  DOMPurify.addHook = () => {};
  DOMPurify.removeHook = () => {};
  DOMPurify.removeHooks = () => {};
  DOMPurify.sanitize = (text) => String(text);
}
const { default: mermaid } = await import('mermaid');

let invalid = 0;
for (const file of process.argv.slice(2)) {
  try {
    const result = await mermaid.parse(readFileSync(file, 'utf8'));
    console.log(`${file}: ok ${result.diagramType}`);
  } catch (error) {
    invalid += 1;
    console.log(`${file}: INVALID ${String(error?.message ?? error).replace(/\n/g, ' | ')}`);
  }
}
process.exit(invalid ? 1 : 0);
