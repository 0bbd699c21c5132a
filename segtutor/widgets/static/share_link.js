// The browser half of segtutor's ShareLink (segtutor/widgets/links.py): an anywidget module.
//
// Shows the link to the view as it is now (this page's address with the view's settings as its query string), a
// button that copies it, and the note of what a link that opened this view could not apply.

function render({ model, el }) {
  const row = document.createElement("div");
  row.className = "segtutor-share";
  row.style.cssText = "display:flex;align-items:center;gap:8px;font-size:12px;margin:4px 0";
  const button = document.createElement("button");
  const label = "🔗 copy link to this view";
  button.className = "jupyter-button widget-button segtutor-share-copy";
  button.textContent = label;
  button.style.cssText = "width:auto;padding:0 10px";
  const link = document.createElement("input");
  link.className = "segtutor-share-link";
  link.readOnly = true;
  link.style.cssText = "flex:1;min-width:300px;font-family:monospace;font-size:12px;color:#333;border:1px solid #ccc";
  const note = document.createElement("div");
  note.className = "segtutor-share-note";
  note.style.cssText = "font-size:12px;color:#b35806;margin:2px 0";
  row.append(button, link);
  el.append(row, note);

  const update = () => {
    const query = model.get("query");
    // In Voila the page's own address opens this dashboard: with the query, in this state. Elsewhere (JupyterLab)
    // only the query is shown: add it to a Voila dashboard's address.
    link.value = model.get("in_voila") ? `${location.origin}${location.pathname}?${query}` : `?${query}`;
    note.textContent = model.get("note");
    note.style.display = note.textContent ? "" : "none";
  };
  model.on("change:query", update);
  model.on("change:note", update);
  update();

  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(link.value);
    } catch {
      link.select();  // no clipboard permission (an insecure origin): the selected text can be copied by hand
      document.execCommand("copy");
    }
    button.textContent = "✓ copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
}

export default { render };
