// Render the \( ... \) and \[ ... \] spans written by pymdownx.arithmatex (generic mode) with KaTeX.
document$.subscribe(({ body }) => {
  if (typeof renderMathInElement === "undefined") { return; }
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
  });
});
