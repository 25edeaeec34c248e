// The web simulator page: pick a flow and a language, then chat with the engine.
// Message text reaches the DOM through textContent only, never innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);
let flows = [];
let session = newId();

// crypto.randomUUID exists only on https or localhost; a phone on the LAN uses http.
function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, "0"));
  return hex.join("");
}

function option(value, label) {
  const element = document.createElement("option");
  element.value = value;
  element.dir = "auto"; // flow titles and language names can be in any script
  element.textContent = label;
  return element;
}

function fillLanguages() {
  const flow = flows.find((f) => f.id === $("flow").value);
  const select = $("lang");
  select.replaceChildren(...flow.locales.map((code) =>
    option(code, flow.language_names[code] || code)));
  select.value = flow.default_locale;
}

function restart() {
  session = newId();
  const hint = document.createElement("p");
  hint.className = "hint";
  hint.textContent = "New conversation: say hello.";
  $("log").replaceChildren(hint);
  $("text").focus();
}

function bubble(kind, text, lang, imageUrl) {
  const element = document.createElement("div");
  element.className = `bubble ${kind}`;
  element.dir = "auto";
  if (lang) element.lang = lang;
  element.textContent = text;
  // Only this server's signed /media/ paths: the CSP (img-src 'self') refuses others anyway.
  if (imageUrl && imageUrl.startsWith("/media/")) element.prepend(picture(imageUrl, text));
  $("log").append(element);
  element.scrollIntoView({ block: "end" });
  return element;
}

function picture(url, alt) {
  const image = document.createElement("img");
  image.src = url;
  image.alt = alt;
  // It arrives after the bubbles below it were laid out: keep the newest in view.
  image.addEventListener("load", () => { $("log").scrollTop = $("log").scrollHeight; });
  return image;
}

function choices(options) {
  const row = document.createElement("div");
  row.className = "choices";
  for (const choice of options) {
    const button = document.createElement("button");
    button.type = "button";
    button.dir = "auto";
    button.textContent = choice.title;
    button.addEventListener("click", () => send({ reply_id: choice.id }, choice.title));
    row.append(button);
  }
  $("log").append(row);
  row.scrollIntoView({ block: "end" });
}

function busy(on) {
  for (const control of document.querySelectorAll("button, input, select")) {
    control.disabled = on;
  }
}

async function send(fields, shown) {
  // Earlier choices are answered or out of date: only the newest ones stay clickable.
  for (const old of document.querySelectorAll(".choices button")) old.classList.add("old");
  bubble("user", shown);
  busy(true);
  try {
    const body = { flow: $("flow").value, lang: $("lang").value, session, id: newId(), ...fields };
    const response = await fetch("/web/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    for (const message of data.messages) {
      bubble("bot", message.text, message.language, message.image_url);
      if (message.options.length) choices(message.options);
    }
  } catch (error) {
    bubble("error", `Not sent: ${error.message}`);
  } finally {
    busy(false);
    for (const old of document.querySelectorAll(".choices button.old")) old.disabled = true;
    $("text").focus();
  }
}

async function start() {
  const response = await fetch("/web/flows");
  flows = await response.json();
  $("flow").replaceChildren(...flows.map((flow) => option(flow.id, flow.title || flow.id)));
  fillLanguages();
  $("flow").addEventListener("change", () => { fillLanguages(); restart(); });
  $("lang").addEventListener("change", restart);
  $("restart").addEventListener("click", restart);
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    send({ text }, text);
  });
}

start().catch((error) => bubble("error", `Could not load the flows: ${error.message}`));
