// numnet playground: the page. It only draws; numnet's engine, in the server, does every computation.
//
// One worker loop talks to the server, one request at a time: a pending settings change first, then a
// queued action (step, reset, upload), then, while playing, a training request. Every answer is a "frame"
// (see numnet/playground/session.py): it is drawn at once and the loop waits for the browser to paint it
// before asking for the next, so each picture is seen. The whole setup lives in the URL's query string.
"use strict";

const PLAY_SECONDS = 0.05;            // a playing request trains for at most this long (whole epochs)
const CURVE_POINTS = 4000;            // curves are halved (every other point kept) beyond this length
const RATE_WINDOW_MS = 2000;          // the update rate counts the pictures painted in this window
const PAINT_LOG = 5000;               // paint times kept for benchmarks/playground_speed.py
const NEGATIVE = [245, 147, 34];      // TensorFlow Playground's orange, for -1 (and class 0)
const NEUTRAL = [232, 234, 235];
const POSITIVE = [8, 119, 189];       // its blue, for +1 (and class 1)
const CLASS_COLOURS = [NEGATIVE, POSITIVE, [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75],
  [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];
const LAYER_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"];
const FEATURES = [["x", "x", (x, y) => x], ["y", "y", (x, y) => y], ["x2", "x²", (x, y) => x * x],
  ["y2", "y²", (x, y) => y * y], ["xy", "xy", (x, y) => x * y], ["sinx", "sin x", (x, y) => Math.sin(x)],
  ["siny", "sin y", (x, y) => Math.sin(y)]];
const FIELDS = {  // every setting, how it reads from the URL
  problem: String, dataset: String, n_samples: Number, noise: Number, train_fraction: Number,
  data_seed: Number, features: (text) => text ? text.split(",") : [],
  hidden: (text) => text ? text.split(",").map(Number) : [], activation: String, loss: String,
  optimizer: String, learning_rate: Number, batch_size: Number, regularization: String,
  regularization_rate: Number, dropout: Number, batch_norm: (text) => text === "true", seed: Number,
};
const NEW_LAYER_NEURONS = 2;
const MAX_LAYERS = 6;
const MAX_NEURONS = 64;

const $ = (id) => document.getElementById(id);

const state = {
  menus: null,          // the server's choices for the menus (GET /api/menus)
  session: null,        // the server's session id
  settings: null,       // the settings the server confirmed last
  frame: null,          // the last frame drawn
  output: null,         // its output values, decoded (Float32Array)
  points: null,         // the decoded training and test points
  playing: false,
  busy: false,
  training: null,       // the training request in flight while playing
  networkShape: null,   // the features and hidden sizes the network's columns were built for
  pendingSettings: null,
  actions: [],
  changeStartedAt: null,
  curves: null,
  paintTimes: [],
  paintLog: [],         // [time, epoch] of every painted picture, the latest PAINT_LOG
  latencies: [],
  pictures: 0,
};

// ---- talking to the server ------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `the server answered ${status}`);
    this.status = status;
  }
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const answer = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

const sessionPath = (action) => `/api/sessions/${state.session}/${action}`;

function requestTraining() {
  const request = api(sessionPath("train"), { epochs: Number($("speed").value), seconds: PLAY_SECONDS });
  request.catch(() => {});  // a failure is handled where the request is awaited
  return request;
}

async function work() {
  if (state.busy) return;
  state.busy = true;
  try {
    for (;;) {
      if (state.training) {
        // While playing, the next request goes out before this answer is drawn, so that the server trains
        // while the browser paints. An answer is always drawn (the page must show the server's network),
        // unless a settings change is about to replace that network.
        const frame = await state.training;
        const goOn = state.playing && !frame.divergence && !state.pendingSettings && !state.actions.length;
        state.training = goOn ? requestTraining() : null;
        if (!state.pendingSettings) await show(frame);
      } else if (state.pendingSettings) {
        const settings = state.pendingSettings;
        state.pendingSettings = null;
        await show(await api(sessionPath("settings"), { settings }));
      } else if (state.actions.length) {
        await state.actions.shift()();
      } else if (state.playing) {
        state.training = requestTraining();
      } else {
        break;
      }
    }
  } catch (error) {
    state.training = null;
    fail(error);
  } finally {
    state.busy = false;
  }
}

function fail(error) {
  setPlaying(false);
  state.pendingSettings = null;
  state.actions = [];
  state.changeStartedAt = null;
  if (error instanceof ApiError && error.status === 400 && state.settings) {
    syncControls(state.settings);  // the server kept the last good settings; so do the controls
  }
  message(error.message);
}

function message(text, info = false) {
  $("message").textContent = text || "";
  $("message").classList.toggle("info", info);
}

function changeSettings(changes) {
  const settings = Object.assign({}, state.pendingSettings || state.settings, changes);
  if (state.changeStartedAt === null) state.changeStartedAt = performance.now();
  state.pendingSettings = settings;
  message("");
  work();
}

function queue(action) {
  state.actions.push(action);
  work();
}

// ---- frames -----------------------------------------------------------------------------------------

async function show(frame) {
  if (frame.settings) {
    state.settings = frame.settings;
    state.curves = { epochs: [], train: [], test: [], gradients: frame.weights.map(() => []) };
    syncControls(frame.settings);
    history.replaceState(null, "", "?" + encodeSettings(frame.settings));
    buildNetwork(frame.settings);
  }
  if (frame.data) state.points = decodePoints(frame.data);
  state.frame = frame;
  state.output = decodeFloat32(frame.output.values);
  if (frame.settings) addRecord(Object.assign({}, frame.current, { gradients: null }));
  frame.records.forEach(addRecord);
  drawAll(frame);
  if (frame.divergence) {
    setPlaying(false);
    message(frame.divergence);
  }
  const paintedAt = await nextPaint();
  if (frame.settings && state.changeStartedAt !== null) {
    state.latencies.push(paintedAt - state.changeStartedAt);
    state.changeStartedAt = null;
  }
  state.paintTimes.push(paintedAt);
  state.paintLog.push([paintedAt, frame.epoch]);
  if (state.paintLog.length > PAINT_LOG) state.paintLog.shift();
  showSpeed(paintedAt);
}

function nextPaint() {
  // A requestAnimationFrame callback runs at the start of the frame that paints what was drawn before it.
  return new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())));
}

function addRecord(record) {
  const curves = state.curves;
  curves.epochs.push(record.epoch);
  curves.train.push(record.train_loss);
  curves.test.push(record.test_loss);
  if (record.gradients) record.gradients.forEach((value, layer) => curves.gradients[layer].push([record.epoch, value]));
  if (curves.epochs.length > CURVE_POINTS) {
    const keep = (values) => values.filter((_, index) => index % 2 === 0);
    curves.epochs = keep(curves.epochs); curves.train = keep(curves.train); curves.test = keep(curves.test);
  }
  curves.gradients = curves.gradients.map((points) => points.length > CURVE_POINTS
    ? points.filter((_, index) => index % 2 === 0) : points);
}

function showSpeed(now) {
  state.paintTimes = state.paintTimes.filter((time) => now - time <= RATE_WINDOW_MS);
  const times = state.paintTimes;
  if (state.playing && times.length > 2) {
    $("update-rate").textContent = ((times.length - 1) * 1000 / (times[times.length - 1] - times[0])).toFixed(1);
  }
  if (state.latencies.length) $("latency").textContent = state.latencies[state.latencies.length - 1].toFixed(0);
}

function decodeBytes(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

const decodeFloat32 = (base64) => new Float32Array(decodeBytes(base64).buffer);

function decodePoints(data) {
  return { version: data.version, problem: data.problem, classNames: data.class_names, fileName: data.file_name,
    train: decodeFloat32(data.train), trainLabels: data.train_labels,
    test: decodeFloat32(data.test), testLabels: data.test_labels };
}

// ---- the URL ----------------------------------------------------------------------------------------

function encodeSettings(settings) {
  const query = new URLSearchParams();
  for (const key of Object.keys(FIELDS)) {
    const value = settings[key];
    query.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  return query.toString();
}

function decodeSettings(search) {
  const query = new URLSearchParams(search);
  const settings = {};
  for (const [key, read] of Object.entries(FIELDS)) {
    if (query.has(key)) settings[key] = read(query.get(key));
  }
  return settings;
}

// ---- controls ---------------------------------------------------------------------------------------

function setSelect(id, value) {
  const select = $(id);
  const text = String(value);
  if (![...select.options].some((option) => option.value === text)) {
    select.add(new Option(text, text));  // e.g. a learning rate typed into the URL
  }
  select.value = text;
}

function syncControls(settings) {
  ["problem", "dataset", "activation", "loss", "optimizer", "regularization"].forEach((name) => setSelect(name, settings[name]));
  setSelect("learning-rate", settings.learning_rate);
  setSelect("regularization-rate", settings.regularization_rate);
  setSelect("dropout", settings.dropout);
  $("batch-norm").checked = settings.batch_norm;
  setSelect("n-samples", settings.n_samples);
  $("seed").value = settings.seed;
  $("noise").value = Math.round(settings.noise * 100);
  $("noise-value").textContent = String(Math.round(settings.noise * 100));
  $("train-fraction").value = Math.round(settings.train_fraction * 100);
  $("train-fraction-value").textContent = `${Math.round(settings.train_fraction * 100)}%`;
  $("batch-size").value = settings.batch_size;
  $("batch-size-value").textContent = String(settings.batch_size);
  const regression = settings.problem === "regression";
  [...$("loss").options].forEach((option) => { option.disabled = regression && option.value !== "mse"; });
  $("hidden-count").textContent = `${settings.hidden.length} hidden layer${settings.hidden.length === 1 ? "" : "s"}`;
  $("add-layer").disabled = settings.hidden.length >= MAX_LAYERS;
  $("remove-layer").disabled = settings.hidden.length === 0;
  $("export-model").href = sessionPath("model.npz");
  $("export-script").href = sessionPath("script.py");
}

function onSelect(id, field, parse = String) {
  $(id).addEventListener("change", (event) => changeSettings({ [field]: parse(event.target.value) }));
}

function bindControls() {
  onSelect("activation", "activation");
  onSelect("optimizer", "optimizer");
  onSelect("regularization", "regularization");
  onSelect("learning-rate", "learning_rate", Number);
  onSelect("regularization-rate", "regularization_rate", Number);
  onSelect("dropout", "dropout", Number);
  $("batch-norm").addEventListener("change", (event) => changeSettings({ batch_norm: event.target.checked }));
  onSelect("n-samples", "n_samples", Number);
  onSelect("loss", "loss");
  $("seed").addEventListener("change", (event) => changeSettings({ seed: Math.max(0, Math.floor(Number(event.target.value) || 0)) }));
  $("dataset").addEventListener("change", (event) => changeSettings(datasetChange(event.target.value)));
  $("problem").addEventListener("change", (event) => {
    const problem = event.target.value;
    changeSettings(Object.assign({ problem }, datasetChange(state.menus.dataset[problem][0].value)));
  });
  const slider = (id, field, scale, label) => {
    $(id).addEventListener("input", (event) => { $(`${id}-value`).textContent = label(event.target.value); });
    $(id).addEventListener("change", (event) => changeSettings({ [field]: Number(event.target.value) / scale }));
  };
  slider("noise", "noise", 100, (value) => value);
  slider("train-fraction", "train_fraction", 100, (value) => `${value}%`);
  slider("batch-size", "batch_size", 1, (value) => value);
  $("regenerate").addEventListener("click", () => changeSettings({ data_seed: Math.floor(Math.random() * 2147483647) }));
  $("add-layer").addEventListener("click", () => changeHidden((hidden) => hidden.length < MAX_LAYERS && hidden.push(NEW_LAYER_NEURONS)));
  $("remove-layer").addEventListener("click", () => changeHidden((hidden) => hidden.pop()));
  $("play").addEventListener("click", () => { setPlaying(true); message(""); work(); });
  $("pause").addEventListener("click", () => setPlaying(false));
  $("step").addEventListener("click", () => { setPlaying(false); queue(async () => show(await api(sessionPath("train"), { epochs: 1 }))); });
  $("reset").addEventListener("click", () => { setPlaying(false); queue(async () => show(await api(sessionPath("reset"), {}))); });
  $("upload").addEventListener("change", uploadFile);
  $("show-test").addEventListener("change", () => state.frame && drawHeatmap(state.frame));
  $("discretize").addEventListener("change", () => state.frame && drawHeatmap(state.frame));
  $("network").addEventListener("mousemove", showWeightUnderPointer);
  $("network").addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  window.addEventListener("resize", () => state.frame && drawLinks(state.frame));
  window.addEventListener("pagehide", () => state.session && navigator.sendBeacon(sessionPath("close"), "{}"));
}

function datasetChange(dataset) {
  // The data set decides the problem type; a regression trains with mse.
  const regression = state.menus.dataset.regression.some((entry) => entry.value === dataset);
  const changes = { dataset };
  if (dataset !== "csv") changes.problem = regression ? "regression" : "classification";
  const loss = (state.pendingSettings || state.settings).loss;
  if (regression) changes.loss = "mse";
  else if (loss === "mse" && (state.settings.problem === "regression")) changes.loss = "binary_cross_entropy";
  return changes;
}

function changeHidden(edit) {
  const hidden = (state.pendingSettings || state.settings).hidden.slice();
  edit(hidden);
  changeSettings({ hidden });
}

function setPlaying(playing) {
  state.playing = playing;
  $("play").classList.toggle("active", playing);
  $("pause").classList.toggle("active", !playing && state.frame !== null);
}

function uploadFile(event) {
  const file = event.target.files[0];
  if (!file) return;
  file.text().then((text) => queue(async () => {
    state.changeStartedAt = performance.now();
    await show(await api(sessionPath("upload"), { file_name: file.name, text }));
    $("csv-option").disabled = false;
    $("data-note").textContent = `${file.name}: scaled into the square [-5, 5]².`;
  }), fail);
  event.target.value = "";
}

// ---- the network ------------------------------------------------------------------------------------

function nodeSize(count) {
  return Math.max(6, Math.min(36, Math.floor(380 / Math.max(count, 1)) - 4));
}

function makeCanvas(size, pixels) {
  const canvas = document.createElement("canvas");
  canvas.width = pixels;
  canvas.height = pixels;
  canvas.className = "node";
  canvas.style.width = `${size}px`;
  canvas.style.height = `${size}px`;
  return canvas;
}

function buildNetwork(settings) {
  // Rebuilt only when the layers or the features change: most changes keep the same shape.
  const shape = `${settings.features.join(",")}/${settings.hidden.join(",")}`;
  if (state.networkShape === shape) return;
  state.networkShape = shape;
  const columns = $("columns");
  columns.replaceChildren();
  const featureColumn = column("");
  for (const [name, label, value] of FEATURES) {
    const item = document.createElement("div");
    const on = settings.features.includes(name);
    item.className = `feature${on ? "" : " off"}`;
    item.dataset.testid = `feature-${name}`;
    item.dataset.feature = name;
    item.title = on ? `${label}: click to stop using it` : `${label}: click to use it`;
    const canvas = makeCanvas(30, 20);
    drawFunction(canvas, value);
    const text = document.createElement("span");
    text.textContent = label;
    item.append(text, canvas);
    item.addEventListener("click", () => toggleFeature(name));
    featureColumn.append(item);
  }
  columns.append(featureColumn);
  settings.hidden.forEach((count, layer) => {
    const hidden = column(`${count} neuron${count === 1 ? "" : "s"}`, layer);
    const size = nodeSize(count);
    for (let neuron = 0; neuron < count; neuron++) hidden.append(makeCanvas(size, 20));
    columns.append(hidden);
  });
  columns.append(column("output"));
}

function column(heading, layer) {
  const element = document.createElement("div");
  element.className = "column";
  const title = document.createElement("div");
  title.className = "heading";
  if (layer !== undefined) {
    const buttons = document.createElement("div");
    buttons.className = "neuron-buttons";
    const button = (text, change) => {
      const control = document.createElement("button");
      control.type = "button";
      control.textContent = text;
      control.dataset.testid = `${text === "+" ? "add" : "remove"}-neuron-${layer}`;
      control.addEventListener("click", () => changeHidden((hidden) => {
        hidden[layer] = Math.max(1, Math.min(MAX_NEURONS, hidden[layer] + change));
      }));
      return control;
    };
    buttons.append(button("+", 1), button("\u2212", -1));
    title.append(buttons);
  }
  title.append(document.createTextNode(heading));
  element.append(title);
  return element;
}

function toggleFeature(name) {
  const features = (state.pendingSettings || state.settings).features;
  const next = features.includes(name) ? features.filter((feature) => feature !== name) : [...features, name];
  if (!next.length) { message("keep at least one feature", true); return; }
  const order = FEATURES.map(([feature]) => feature);
  changeSettings({ features: next.sort((a, b) => order.indexOf(a) - order.indexOf(b)) });
}

function drawFunction(canvas, value) {
  // A feature's picture over the square, scaled by its largest absolute value there.
  const size = canvas.width;
  const values = [];
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      const x = -6 + (col + 0.5) * 12 / size;
      const y = 6 - (row + 0.5) * 12 / size;
      values.push(value(x, y));
    }
  }
  const largest = Math.max(...values.map(Math.abs)) || 1;
  paintLevels(canvas, values.map((v) => v / largest));
}

function paintLevels(canvas, values) {
  // values in [-1, 1], row by row from the top: orange, grey, blue.
  paintLevelBytes(canvas, Uint8Array.from(values, (value) => Math.round((Math.max(-1, Math.min(1, value)) + 1) * 127.5)));
}

// The colour of each of the 256 levels the server's neuron pictures use (level / 127.5 - 1 in [-1, 1]).
const LEVEL_COLOURS = Array.from({ length: 256 }, (_, level) => diverging(level / 127.5 - 1));

function paintLevelBytes(canvas, levels) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  const pixels = image.data;
  for (let index = 0; index < levels.length; index++) {
    const colour = LEVEL_COLOURS[levels[index]];
    pixels[4 * index] = colour[0];
    pixels[4 * index + 1] = colour[1];
    pixels[4 * index + 2] = colour[2];
    pixels[4 * index + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

function mix(from, to, amount) {
  return from.map((channel, index) => Math.round(channel + (to[index] - channel) * amount));
}

function diverging(value) {
  const clipped = Math.max(-1, Math.min(1, value));
  return clipped < 0 ? mix(NEUTRAL, NEGATIVE, -clipped) : mix(NEUTRAL, POSITIVE, clipped);
}

function drawNeurons(frame) {
  const columns = $("columns").children;
  frame.neurons.layers.forEach((encoded, layer) => {
    const levels = decodeBytes(encoded);
    const pixels = frame.neurons.size * frame.neurons.size;
    const canvases = columns[layer + 1].querySelectorAll("canvas");
    canvases.forEach((canvas, neuron) => paintLevelBytes(canvas, levels.subarray(neuron * pixels, (neuron + 1) * pixels)));
  });
  const outputColumn = columns[columns.length - 1];
  outputColumn.querySelectorAll("canvas").forEach((canvas) => canvas.remove());
  for (let output = 0; output < frame.output.n_outputs; output++) {
    const canvas = makeCanvas(nodeSize(frame.output.n_outputs), frame.output.size);
    paintOutputChannel(canvas, frame, output);
    outputColumn.append(canvas);
  }
}

function paintOutputChannel(canvas, frame, channel) {
  const n = frame.output.n_outputs;
  const values = [];
  for (let index = 0; index < frame.output.size * frame.output.size; index++) {
    values.push(displayValue(frame.output, state.output[index * n + channel]));
  }
  paintLevels(canvas, values);
}

function displayValue(output, value) {
  // One output's value on the [-1, 1] colour scale: probabilities from [0, 1], a regression from its range.
  if (output.activation === "sigmoid" || output.activation === "softmax") return 2 * value - 1;
  if (output.kind === "value") return 2 * (value - output.range[0]) / ((output.range[1] - output.range[0]) || 1) - 1;
  return value;
}

function drawLinks(frame) {
  const network = $("network");
  const canvas = $("links");
  const box = network.getBoundingClientRect();
  canvas.width = network.scrollWidth;
  canvas.height = network.scrollHeight;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const columns = [...$("columns").children];
  const anchors = columns.map((element, index) => {
    const nodes = index === 0 ? [...element.querySelectorAll(".feature:not(.off) canvas")] : [...element.querySelectorAll("canvas")];
    return nodes.map((node) => {
      const rect = node.getBoundingClientRect();
      return { left: rect.left - box.left + network.scrollLeft, right: rect.right - box.left + network.scrollLeft,
        middle: rect.top - box.top + rect.height / 2 + network.scrollTop };
    });
  });
  state.links = [];
  frame.weights.forEach((layer, index) => {
    const W = decodeFloat32(layer.W);
    const [nIn, nOut] = layer.shape;
    const sources = anchors[index];
    const targets = anchors[index + 1];
    if (!sources || !targets || sources.length !== nIn || targets.length !== nOut) return;
    for (let i = 0; i < nIn; i++) {
      for (let j = 0; j < nOut; j++) {
        const weight = W[i * nOut + j];
        const link = { x1: sources[i].right, y1: sources[i].middle, x2: targets[j].left, y2: targets[j].middle,
          weight, name: `${layer.name}.W[${i}, ${j}]` };
        state.links.push(link);
        context.strokeStyle = `rgb(${(weight < 0 ? NEGATIVE : POSITIVE).join(",")})`;
        context.globalAlpha = Math.min(1, 0.25 + Math.abs(weight));
        context.lineWidth = Math.min(6, 0.5 + 1.5 * Math.abs(weight));
        context.beginPath();
        context.moveTo(link.x1, link.y1);
        context.lineTo(link.x2, link.y2);
        context.stroke();
      }
    }
  });
  context.globalAlpha = 1;
}

function showWeightUnderPointer(event) {
  const network = $("network");
  const box = network.getBoundingClientRect();
  const x = event.clientX - box.left + network.scrollLeft;
  const y = event.clientY - box.top + network.scrollTop;
  let best = null;
  let bestDistance = 5;  // pixels: the pointer must be this close to a line
  for (const link of state.links || []) {
    const distance = distanceToSegment(x, y, link);
    if (distance < bestDistance) { best = link; bestDistance = distance; }
  }
  const tooltip = $("tooltip");
  if (!best) { tooltip.hidden = true; return; }
  tooltip.textContent = `${best.name} = ${best.weight.toFixed(4)}`;
  tooltip.style.left = `${event.clientX + 12}px`;
  tooltip.style.top = `${event.clientY + 12}px`;
  tooltip.hidden = false;
}

function distanceToSegment(x, y, { x1, y1, x2, y2 }) {
  const dx = x2 - x1;
  const dy = y2 - y1;
  const t = Math.max(0, Math.min(1, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy || 1)));
  return Math.hypot(x - (x1 + t * dx), y - (y1 + t * dy));
}

// ---- the output, the points and the curves ------------------------------------------------------------

function drawAll(frame) {
  $("epoch").textContent = String(frame.epoch);
  const current = frame.current;
  $("train-loss").textContent = formatLoss(current.train_loss);
  $("test-loss").textContent = formatLoss(current.test_loss);
  $("train-accuracy").textContent = current.train_accuracy === null ? "-" : current.train_accuracy.toFixed(3);
  $("test-accuracy").textContent = current.test_accuracy === null ? "-" : current.test_accuracy.toFixed(3);
  $("accuracy").hidden = current.train_accuracy === null;  // a regression has no accuracy
  drawNeurons(frame);
  drawLinks(frame);
  drawHeatmap(frame);
  drawLossChart();
  drawGradientChart(frame);
  drawFindings(frame.findings || []);
}

function drawFindings(findings) {
  // The doctor's findings in plain words, each with its advice; one that was not there before is marked.
  const list = $("findings");
  const seen = new Set(Array.from(list.querySelectorAll("li[data-key]"), (item) => item.dataset.key));
  list.replaceChildren();
  if (!findings.length) {
    const item = document.createElement("li");
    item.className = "healthy";
    item.textContent = "No problems found.";
    list.append(item);
    return;
  }
  for (const finding of findings) {
    const item = document.createElement("li");
    item.dataset.key = `${finding.code}:${finding.layer}`;
    item.dataset.code = finding.code;
    if (!seen.has(item.dataset.key)) item.classList.add("new");
    const code = document.createElement("span");
    code.className = "code";
    code.textContent = `${finding.code.replace(/_/g, " ")} (${finding.layer})`;
    const figure = document.createElement("span");
    figure.className = "figure";
    const measured = finding.measured === null ? "not finite" : Number(finding.measured).toPrecision(3);
    figure.textContent = ` ${finding.quantity}: ${measured}, threshold ${finding.threshold}. `;
    const advice = document.createElement("span");
    advice.className = "advice";
    advice.textContent = finding.advice;
    item.append(code, figure, document.createElement("br"), advice);
    list.append(item);
  }
}

function formatLoss(value) {
  // A plain decimal with at least four significant digits, also for losses far below 0.001.
  if (value === null || !Number.isFinite(value)) return "-";
  const digits = value > 0 && value < 1 ? Math.min(12, 3 - Math.floor(Math.log10(value))) : 4;
  return value.toFixed(Math.max(4, digits));
}

function outputColour(output, index) {
  const n = output.n_outputs;
  const discrete = $("discretize").checked && output.kind !== "value";
  if (n === 1) {
    const value = displayValue(output, state.output[index]);
    return diverging(discrete ? Math.sign(value) : value);
  }
  let best = 0;
  for (let k = 1; k < n; k++) if (state.output[index * n + k] > state.output[index * n + best]) best = k;
  const top = state.output[index * n + best];
  // The winning class's colour, stronger the surer it is: softmax from 1/K to 1, tanh from -1 to 1.
  const confidence = output.activation === "softmax" ? (top - 1 / n) / (1 - 1 / n) : (top + 1) / 2;
  return mix(NEUTRAL, CLASS_COLOURS[best % CLASS_COLOURS.length], discrete ? 1 : Math.max(0, Math.min(1, confidence)));
}

function drawHeatmap(frame) {
  const canvas = $("heatmap");
  const context = canvas.getContext("2d");
  const output = frame.output;
  const grid = document.createElement("canvas");
  grid.width = output.size;
  grid.height = output.size;
  const gridContext = grid.getContext("2d");
  const image = gridContext.createImageData(output.size, output.size);
  for (let index = 0; index < output.size * output.size; index++) {
    const colour = outputColour(output, index);
    image.data.set([colour[0], colour[1], colour[2], 255], index * 4);
  }
  gridContext.putImageData(image, 0, 0);
  context.imageSmoothingEnabled = true;
  context.drawImage(grid, 0, 0, canvas.width, canvas.height);
  const layer = pointsLayer(canvas, output);
  if (layer) context.drawImage(layer.canvas, 0, 0);
  state.pictures += 1;
  canvas.dataset.frame = String(state.pictures);
  canvas.dataset.points = String(layer ? layer.count : 0);
  canvas.dataset.dataVersion = String(state.points ? state.points.version : 0);
  canvas.dataset.epoch = String(frame.epoch);
}

function pointsLayer(canvas, output) {
  // The points change only with the data (or the test-data switch): drawn once onto a layer kept for reuse.
  const points = state.points;
  if (!points) return null;
  const key = `${points.version}/${$("show-test").checked}/${output.range.join(",")}/${canvas.width}`;
  if (state.pointsLayer && state.pointsLayer.key === key) return state.pointsLayer;
  const layer = document.createElement("canvas");
  layer.width = canvas.width;
  layer.height = canvas.height;
  const context = layer.getContext("2d");
  const toPixel = (value, flip) => ((flip ? -value : value) + output.domain) / (2 * output.domain);
  const colourOf = (label) => points.problem === "regression"
    ? diverging(displayValue(output, label)) : CLASS_COLOURS[label % CLASS_COLOURS.length];
  let count = 0;
  const draw = (coordinates, labels, edge) => {
    for (let i = 0; i < labels.length; i++) {
      context.beginPath();
      context.arc(toPixel(coordinates[2 * i], false) * layer.width, toPixel(coordinates[2 * i + 1], true) * layer.height,
        3, 0, 2 * Math.PI);
      context.fillStyle = `rgb(${colourOf(labels[i]).join(",")})`;
      context.fill();
      context.lineWidth = 1;
      context.strokeStyle = edge;
      context.stroke();
      count += 1;
    }
  };
  draw(points.train, points.trainLabels, "#fff");
  if ($("show-test").checked) draw(points.test, points.testLabels, "#000");
  state.pointsLayer = { key, canvas: layer, count };
  return state.pointsLayer;
}

function prepareChart(id) {
  const canvas = $(id);
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  return { canvas, context };
}

function drawCurve(context, canvas, xs, ys, colour, yRange, xRange) {
  const [yLow, yHigh] = yRange;
  const [xLow, xHigh] = xRange;
  context.strokeStyle = colour;
  context.lineWidth = 1.5;
  context.beginPath();
  let started = false;
  ys.forEach((value, index) => {
    if (value === null || !Number.isFinite(value)) { started = false; return; }
    const x = 4 + (canvas.width - 8) * ((xs[index] - xLow) / ((xHigh - xLow) || 1));
    const y = canvas.height - 4 - (canvas.height - 8) * ((value - yLow) / ((yHigh - yLow) || 1));
    if (started) context.lineTo(x, y); else context.moveTo(x, y);
    started = true;
  });
  context.stroke();
}

function drawLossChart() {
  const { canvas, context } = prepareChart("loss-chart");
  const curves = state.curves;
  if (!curves.epochs.length) return;
  const values = [...curves.train, ...curves.test].filter((value) => value !== null && Number.isFinite(value));
  const yRange = [0, Math.max(...values, 1e-9)];
  const xRange = [curves.epochs[0], curves.epochs[curves.epochs.length - 1]];
  drawCurve(context, canvas, curves.epochs, curves.train, "#999", yRange, xRange);
  drawCurve(context, canvas, curves.epochs, curves.test, "#222", yRange, xRange);
}

function drawGradientChart(frame) {
  const { canvas, context } = prepareChart("gradient-chart");
  const legend = $("gradient-legend");
  if (legend.childElementCount !== frame.weights.length) {
    legend.replaceChildren(...frame.weights.map((layer, index) => {
      const item = document.createElement("span");
      item.textContent = layer.name;
      item.style.setProperty("--swatch", LAYER_COLOURS[index % LAYER_COLOURS.length]);
      return item;
    }));
  }
  const series = state.curves.gradients.map((points) => points.filter(([, value]) => value > 0));
  const all = series.flat();
  if (!all.length) return;
  const logs = all.map(([, value]) => Math.log10(value));
  const yRange = [Math.min(...logs), Math.max(...logs)];
  const epochs = all.map(([epoch]) => epoch);
  const xRange = [Math.min(...epochs), Math.max(...epochs)];
  series.forEach((points, index) => drawCurve(context, canvas, points.map(([epoch]) => epoch),
    points.map(([, value]) => Math.log10(value)), LAYER_COLOURS[index % LAYER_COLOURS.length], yRange, xRange));
}

// ---- start ------------------------------------------------------------------------------------------

const optionsOf = (entries) => entries.map((entry) => new Option(entry.label, entry.value));

function fillMenus(menus) {
  // The server builds the menus from numnet's tables, so an activation or optimiser added there shows here.
  state.menus = menus;
  ["activation", "optimizer", "loss"].forEach((id) => $(id).replaceChildren(...optionsOf(menus[id])));
  const groups = [["Classification", menus.dataset.classification], ["Regression", menus.dataset.regression]];
  $("dataset").prepend(...groups.map(([label, entries]) => {
    const group = document.createElement("optgroup");
    group.label = label;
    group.append(...optionsOf(entries));
    return group;
  }));
}

async function start() {
  fillMenus(await api("/api/menus"));
  bindControls();
  const requested = decodeSettings(location.search);
  let frame;
  try {
    frame = await api("/api/sessions", { settings: requested });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 400) throw error;
    message(`the link's settings were refused (${error.message}); showing the default setup`);
    frame = await api("/api/sessions", {});
  }
  state.session = frame.session;
  await show(frame);
  setPlaying(false);
}

window.numnetPlayground = {
  state,
  lastOutput: () => Array.from(state.output || []),
  metrics: () => ({ paintLog: state.paintLog.slice(), latencies: state.latencies.slice(),
    updateRate: Number($("update-rate").textContent) || null }),
};

document.addEventListener("DOMContentLoaded", () => start().catch(fail));
