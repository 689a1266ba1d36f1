// The `postMessage` types an embedded gallery exchanges with the page around it (the article's
// /embed.js, or worker mode's shell), as gallery/embed.py documents them for the app origin.

/** Posted by an embedded page to its parent: `{type, height}` (CSS pixels of its content). */
export const RESIZE_MESSAGE = "glasshouse:resize";
/** Sent by the article page's /embed.js when it starts late: the embed answers with its height. */
export const MEASURE_MESSAGE = "glasshouse:measure";
