// The browser half of segtutor's LiveFigure (segtutor/widgets/live_figure.py): an anywidget module.
//
// The Python side keeps the figure ({data, layout, revision}) as widget state and sends numbered patches; this
// file applies them to the model's copy of the figure (initialize) and redraws every view of it with plotly.js
// (render). plotly.js itself arrives once per page, as the bytes of a shared PlotlyLibrary widget.

const PLOTLY = Symbol.for("segtutor.plotly");

// Evaluate plotly.js once per page: the first figure to ask starts it, every figure awaits the same promise.
function loadPlotly(model) {
  if (!globalThis[PLOTLY]) {
    globalThis[PLOTLY] = (async () => {
      performance.mark("segtutor:plotly-requested");  // marks let tests time the page load
      const id = model.get("library").replace("IPY_MODEL_", "");
      const library = await model.widget_manager.get_model(id);
      performance.mark("segtutor:plotly-received");
      const gzipped = new Blob([library.get("source")]).stream().pipeThrough(new DecompressionStream("gzip"));
      const code = await new Response(gzipped).text();
      performance.mark("segtutor:plotly-unzipped");
      const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
      await new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = url;
        script.onload = resolve;
        script.onerror = () => reject(new Error("plotly.js failed to load"));
        document.head.appendChild(script);
      });
      URL.revokeObjectURL(url);
      performance.mark("segtutor:plotly-ready");
      return globalThis.Plotly;
    })();
    globalThis[PLOTLY].catch(() => delete globalThis[PLOTLY]);  // let a later figure try again
  }
  return globalThis[PLOTLY];
}

function initialize({ model }) {
  // Messages sent before this model existed in the page can be lost (JupyterLab creates models asynchronously):
  // tell Python which revision we hold; it sends the whole figure if that is not the latest.
  model.send({ type: "sync", revision: model.get("figure").revision });
  // Apply each numbered patch to the model's copy of the figure (once per model, with or without views).
  model.on("msg:custom", (msg) => {
    if (msg.type !== "patch") return;
    const figure = model.get("figure");
    if (msg.revision <= figure.revision) return;  // already in the state we were given
    if (msg.revision !== figure.revision + 1) {  // we missed a patch: ask Python for the whole figure
      model.send({ type: "resync" });
      return;
    }
    for (const op of msg.ops) {
      const target = op.trace === undefined ? figure.layout : figure.data[op.trace];
      for (const [path, value] of Object.entries(op.props)) {  // "xaxis.range": walk to xaxis, set its range;
        // "annotations.2.text": an array's element by its index
        const keys = path.split(".");
        const last = keys.pop();
        let node = target;
        for (const key of keys) node = node[key] ??= {};
        node[last] = value;
      }
    }
    figure.revision = msg.revision;
  });
}

// The figure fits the room it is given: its layout's width is the widest it gets. The view takes that width, or
// less where its box is narrower (min-width 0 lets a row shrink it), and plotly draws at the view's width. A
// figure without a width fills its box.
function fitWidth(el, figure) {
  const widest = figure.layout.width;
  el.style.width = widest ? `${widest}px` : "100%";
  el.style.maxWidth = "calc(100% - 2 * var(--jp-widgets-margin, 0px))";  // the view has a margin each side
  el.style.minWidth = "0";
  el.style.flex = "0 1 auto";
}

function fittedLayout(el, figure) {
  const layout = structuredClone(figure.layout);  // plotly keeps and mutates what it is given: hand it a copy
  const room = Math.floor(el.clientWidth);
  if (room > 0) layout.width = layout.width ? Math.min(layout.width, room) : room;
  return layout;
}

function render({ model, el }) {
  const div = document.createElement("div");
  div.className = "segtutor-figure";
  el.appendChild(div);
  fitWidth(el, model.get("figure"));
  let Plotly = null;
  let queued = false;
  let alive = true;
  let drawnWidth = 0;
  const draw = () => {
    if (!Plotly || queued) return;
    queued = true;
    requestAnimationFrame(async () => {  // many updates within one frame: one redraw
      queued = false;
      if (!alive) return;
      const figure = model.get("figure");
      fitWidth(el, figure);
      const layout = fittedLayout(el, figure);
      drawnWidth = layout.width;
      await Plotly.react(div, structuredClone(figure.data), layout, model.get("config"));
      div.dataset.revision = figure.revision;
    });
  };
  model.on("msg:custom", draw);
  model.on("change:figure", draw);
  model.on("change:config", draw);
  // tell Python the width the figure is drawn at (its `room`): a widget may lay its panels out for it
  const reportRoom = () => {
    const room = Math.floor(el.clientWidth);
    if (room > 0 && room !== model.get("room")) {
      model.set("room", room);
      model.save_changes();
    }
  };
  // the box got wider or narrower (the window, the file browser, a tab shown): draw at the new width
  const resized = new ResizeObserver(() => {
    reportRoom();
    if (Math.floor(el.clientWidth) > 0 && fittedLayout(el, model.get("figure")).width !== drawnWidth) draw();
  });
  resized.observe(el);
  // Evaluating plotly.js holds the page's only thread for most of a second: let the browser paint the widgets
  // first (the next frame), then load it, so the controls appear before the plots.
  const afterPaint = new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  afterPaint.then(() => loadPlotly(model)).then(async (library) => {
    if (!alive) return;
    Plotly = library;
    const figure = model.get("figure");
    const layout = fittedLayout(el, figure);
    drawnWidth = layout.width;
    await Plotly.newPlot(div, structuredClone(figure.data), layout, model.get("config"));
    div.dataset.revision = figure.revision;
    performance.mark("segtutor:figure-drawn");
    div.on("plotly_click", (event) => {
      const point = event.points[0];
      model.send({ type: "click", trace: point.curveNumber, x: point.x, y: point.y, point_index: point.pointNumber });
    });
    draw();  // in case the figure changed while plotly.js loaded
  }).catch((error) => {
    div.textContent = `segtutor: the figure could not be drawn (${error})`;
  });
  return () => {
    alive = false;
    resized.disconnect();
    if (Plotly) Plotly.purge(div);
  };
}

export default { initialize, render };
