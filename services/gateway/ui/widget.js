/* BabelStack <babel-search>: one classic script, no build step.

   Drop it into any page:
     <script src="https://gateway.example/ui/widget.js" defer></script>
     <babel-search base-url="https://gateway.example" collection="kb" api-key="…"></babel-search>

   It also exposes window.BabelSearch (the API client, the SSE reader and the passage
   highlighter), which the /ui app builds on, so both speak to the API the same way. */
(function () {
  "use strict";

  const scriptOrigin = (() => {
    const src = document.currentScript && document.currentScript.src;
    return src ? new URL(src).origin : window.location.origin;
  })();

  // ------------------------------------------------------------------ API client
  class ApiError extends Error {
    constructor(status, problem) {
      super(problem.detail || problem.title || `HTTP ${status}`);
      this.status = status;
      this.code = problem.code || "";
      this.field = problem.field || null;
    }
  }

  class Client {
    constructor(baseUrl, apiKey) {
      this.baseUrl = (baseUrl || scriptOrigin).replace(/\/+$/, "");
      this.apiKey = apiKey || "";
    }

    headers(json) {
      const headers = {};
      if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
      if (json) headers["content-type"] = "application/json";
      return headers;
    }

    async send(method, path, body, signal) {
      let response;
      try {
        response = await fetch(this.baseUrl + path, {
          method,
          headers: this.headers(body !== undefined),
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
      } catch (error) {
        if (error.name === "AbortError") throw error;
        // fetch says no more: a network failure, or CORS refused this page's origin.
        throw new ApiError(0, { code: "network", detail: String(error.message || error) });
      }
      if (!response.ok) throw await Client.errorOf(response);
      return response;
    }

    async request(method, path, body, signal) {
      const response = await this.send(method, path, body, signal);
      const text = await response.text();
      return text ? JSON.parse(text) : null;
    }

    static async errorOf(response) {
      let problem = {};
      try {
        problem = await response.json();
      } catch (_) {
        problem = { detail: `${response.status} ${response.statusText}` };
      }
      return new ApiError(response.status, problem);
    }

    /* Server-sent events of a POST: yields each `data:` JSON until `data: [DONE]`. */
    async *events(path, body, signal) {
      const response = await this.send("POST", path, body, signal);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block
              .split("\n")
              .filter((line) => line.startsWith("data:"))
              .map((line) => line.slice(5).replace(/^ /, ""))
              .join("\n");
            if (!data) continue;
            if (data === "[DONE]") return;
            const event = JSON.parse(data);
            if (event.error) throw new ApiError(200, { code: event.error.code, detail: event.error.message });
            yield event;
          }
        }
      } finally {
        reader.cancel().catch(() => {});
      }
    }

    search(collection, body, signal) {
      return this.request("POST", `/v1/collections/${encodeURIComponent(collection)}/search`, body, signal);
    }

    async embed(texts, inputType) {
      const reply = await this.request("POST", "/v1/embeddings", { input: texts, input_type: inputType });
      return reply.data.map((item) => item.embedding);
    }
  }

  // ------------------------------------------------------------------ highlighting
  const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Thai}]/u;

  // Function words of four letters or more: marking them would only add noise.
  const STOPWORDS = new Set(
    ("about because been could does from have into should than that their them then there " +
     "these they this those were what when where which will with would your " +
     "aber auch dass diese dieser dieses durch eine einem einen einer haben nach nicht oder " +
     "sind über unter welche welcher welches wenn werden wird " +
     "como cual cuando donde entre esta este esto hace para pero porque sobre tiene " +
     "avec comment dans pour quel quelle sont").split(" "),
  );

  /* The query's words (4+ letters, no function words) and, for scripts written without
     spaces, its character bigrams. */
  function queryTerms(query) {
    const terms = new Set();
    for (const word of query.toLocaleLowerCase().match(/[\p{L}\p{N}]+/gu) || []) {
      if (CJK.test(word)) {
        const chars = Array.from(word);
        for (let i = 0; i + 1 < chars.length; i++) terms.add(chars[i] + chars[i + 1]);
      } else if (Array.from(word).length >= 4 && !STOPWORDS.has(word)) {
        terms.add(word);
      }
    }
    return [...terms];
  }

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  /* Fill `element` with `text`, the ranges [[start, end, className]] marked. */
  function renderMarked(element, text, ranges) {
    element.textContent = "";
    let at = 0;
    for (const [start, end, className] of ranges.sort((a, b) => a[0] - b[0])) {
      if (start < at) continue;
      element.append(text.slice(at, start));
      const mark = document.createElement("mark");
      mark.className = className;
      mark.textContent = text.slice(start, end);
      element.append(mark);
      at = end;
    }
    element.append(text.slice(at));
  }

  /* Mark the query's terms in the passage; returns how many were found. */
  function markTerms(element, text, query) {
    const terms = queryTerms(query);
    const ranges = [];
    if (terms.length) {
      const pattern = new RegExp(terms.map(escapeRegExp).join("|"), "giu");
      for (const match of text.matchAll(pattern)) {
        ranges.push([match.index, match.index + match[0].length, "term"]);
      }
    }
    renderMarked(element, text, ranges);
    return ranges.length;
  }

  function sentences(text) {
    const found = [];
    const pattern = /[^.!?。！？؟\n]+[.!?。！？؟]*/gu;
    for (const match of text.matchAll(pattern)) {
      if (match[0].trim().length > 1) found.push([match.index, match.index + match[0].length]);
    }
    return found;
  }

  /* Across languages no word matches: mark, in each passage, the sentence closest in
     meaning to the query (the service's own multilingual embeddings). */
  async function markBestSentences(client, query, items) {
    const spans = items.map(({ text }) => sentences(text));
    const texts = items.flatMap(({ text }, i) => spans[i].map(([s, e]) => text.slice(s, e)));
    if (!texts.length) return;
    const [queryVector] = await client.embed([query], "query");
    const vectors = await client.embed(texts, "passage");
    let k = 0;
    items.forEach(({ element, text }, i) => {
      let best = -1;
      let bestScore = -Infinity;
      spans[i].forEach((_, j) => {
        const v = vectors[k + j];
        let score = 0;
        for (let d = 0; d < v.length; d++) score += v[d] * queryVector[d];
        if (score > bestScore) {
          bestScore = score;
          best = j;
        }
      });
      k += spans[i].length;
      if (best >= 0) renderMarked(element, text, [[...spans[i][best], "best"]]);
    });
  }

  /* Highlight hits: the query's terms where they occur, else the best sentence. */
  async function highlightPassages(client, query, items) {
    const unmatched = items.filter(({ element, text }) => markTerms(element, text, query) === 0);
    if (unmatched.length) {
      try {
        await markBestSentences(client, query, unmatched);
      } catch (_) {
        /* highlighting is a help, not a requirement */
      }
    }
  }

  /* Answer text with [n] turned into citation buttons. */
  function renderAnswer(element, text, onCite, label) {
    element.textContent = "";
    const parts = text.split(/(\[\d+\])/);
    for (const part of parts) {
      const match = /^\[(\d+)\]$/.exec(part);
      if (match && onCite) {
        const number = Number(match[1]);
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        chip.textContent = match[1];
        chip.dataset.source = match[1];
        if (label) chip.setAttribute("aria-label", label(number));
        chip.addEventListener("click", () => onCite(number, chip));
        element.append(chip);
      } else {
        element.append(part);
      }
    }
  }

  // ------------------------------------------------------------------ the element
  const STRINGS = {
    en: { placeholder: "Search or ask, in any language", search: "Search", ask: "Ask", stop: "Stop",
          nothing: "Nothing found.", idk: "I don't know: no passage in this collection answers that.",
          stopped: "Stopped.", sources: "Sources", source: "Source", network: "Cannot reach the search service from this page (network error, or this page's origin is not allowed).",
          score: "score", searching: "Searching…", answering: "Answering…" },
    de: { placeholder: "Suchen oder fragen, in jeder Sprache", search: "Suchen", ask: "Fragen", stop: "Stopp",
          nothing: "Nichts gefunden.", idk: "Ich weiß es nicht: Keine Passage dieser Sammlung beantwortet das.",
          stopped: "Angehalten.", sources: "Quellen", source: "Quelle", network: "Der Suchdienst ist von dieser Seite aus nicht erreichbar (Netzwerkfehler, oder der Ursprung dieser Seite ist nicht zugelassen).",
          score: "Wert", searching: "Suche …", answering: "Antwort …" },
    es: { placeholder: "Busca o pregunta, en cualquier idioma", search: "Buscar", ask: "Preguntar", stop: "Detener",
          nothing: "No se encontró nada.", idk: "No lo sé: ningún pasaje de esta colección lo responde.",
          stopped: "Detenido.", sources: "Fuentes", source: "Fuente", network: "No se puede acceder al servicio de búsqueda desde esta página (error de red, o el origen de esta página no está permitido).",
          score: "puntuación", searching: "Buscando…", answering: "Respondiendo…" },
    zh: { placeholder: "用任何语言搜索或提问", search: "搜索", ask: "提问", stop: "停止",
          nothing: "未找到结果。", idk: "我不知道：此文档集中没有段落能回答这个问题。",
          stopped: "已停止。", sources: "来源", source: "来源", network: "无法从此页面访问搜索服务（网络错误，或此页面的来源未被允许）。",
          score: "得分", searching: "正在搜索…", answering: "正在回答…" },
    ar: { placeholder: "ابحث أو اسأل بأي لغة", search: "بحث", ask: "اسأل", stop: "إيقاف",
          nothing: "لم يُعثر على شيء.", idk: "لا أعرف: لا يوجد مقطع في هذه المجموعة يجيب عن ذلك.",
          stopped: "تم الإيقاف.", sources: "المصادر", source: "المصدر", network: "تعذّر الوصول إلى خدمة البحث من هذه الصفحة (خطأ في الشبكة، أو أن أصل هذه الصفحة غير مسموح به).",
          score: "الدرجة", searching: "جارٍ البحث…", answering: "جارٍ الإجابة…" },
  };

  function pickLanguage(wanted, available) {
    for (const tag of wanted) {
      const base = String(tag || "").toLowerCase().split("-")[0];
      if (available.includes(base)) return base;
    }
    return "en";
  }

  const WIDGET_CSS = `
    :host { display: block; font: 15px/1.5 system-ui, "Noto Sans", "Noto Sans CJK SC", "Noto Sans Arabic", sans-serif;
            color: #1d232b; border: 1px solid #c9d1db; border-radius: 10px; padding: 12px; background: #fff; }
    form { display: flex; gap: 6px; flex-wrap: wrap; }
    input { flex: 1 1 14em; min-width: 0; padding: 8px 10px; font: inherit; border: 1px solid #8895a7; border-radius: 6px; }
    button { font: inherit; padding: 7px 12px; border-radius: 6px; border: 1px solid #1f5fbf; background: #1f5fbf; color: #fff; cursor: pointer; }
    button.secondary { background: #fff; color: #1f5fbf; }
    button:focus-visible, input:focus-visible { outline: 3px solid #f0a400; outline-offset: 1px; }
    ol { padding-inline-start: 1.4em; margin: 10px 0 0; }
    li { margin-bottom: 10px; }
    .meta { font-size: 13px; color: #4a5565; }
    mark { background: #ffe58a; color: inherit; }
    mark.best { background: #d8ecff; }
    .answer { margin-top: 10px; white-space: pre-wrap; }
    .chip { min-width: 1.8em; padding: 0 6px; margin: 0 2px; font-size: 12px; border-radius: 9px; vertical-align: super; }
    .status { margin-top: 8px; color: #4a5565; }
    .status.error { color: #a3141b; }
    .passage { margin-top: 8px; padding: 8px; border-inline-start: 4px solid #1f5fbf; background: #f3f6fa; }
  `;

  class BabelSearchElement extends HTMLElement {
    static get observedAttributes() {
      return ["base-url", "collection", "api-key", "lang"];
    }

    constructor() {
      super();
      this.attachShadow({ mode: "open" });
      this.controller = null;
    }

    get client() {
      return new Client(this.getAttribute("base-url") || scriptOrigin, this.getAttribute("api-key") || "");
    }

    get strings() {
      const wanted = [this.getAttribute("lang"), document.documentElement.lang, ...navigator.languages];
      return STRINGS[pickLanguage(wanted, Object.keys(STRINGS))];
    }

    connectedCallback() {
      this.render();
    }

    attributeChangedCallback() {
      if (this.shadowRoot.childElementCount) this.render();
    }

    render() {
      const s = this.strings;
      const rtl = s === STRINGS.ar;
      this.shadowRoot.innerHTML = `
        <style>${WIDGET_CSS}</style>
        <div dir="${rtl ? "rtl" : "ltr"}" part="body">
          <form role="search">
            <input name="q" type="search" required aria-label="${s.placeholder}" placeholder="${s.placeholder}">
            <button type="submit" name="search">${s.search}</button>
            <button type="button" name="ask" class="secondary">${s.ask}</button>
            <button type="button" name="stop" class="secondary" hidden>${s.stop}</button>
          </form>
          <div class="status" role="status" aria-live="polite"></div>
          <div class="answer" aria-live="polite"></div>
          <div class="passage" hidden></div>
          <ol class="results"></ol>
        </div>`;
      const root = this.shadowRoot;
      const form = root.querySelector("form");
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.search();
      });
      root.querySelector("[name=ask]").addEventListener("click", () => form.reportValidity() && this.ask());
      root.querySelector("[name=stop]").addEventListener("click", () => this.stop());
    }

    part(selector) {
      return this.shadowRoot.querySelector(selector);
    }

    setStatus(text, error) {
      const status = this.part(".status");
      status.textContent = text;
      status.classList.toggle("error", Boolean(error));
    }

    fail(error) {
      if (error.name === "AbortError") return;
      this.setStatus(error.code === "network" ? this.strings.network : error.message, true);
    }

    reset() {
      this.stop();
      this.part(".answer").textContent = "";
      this.part(".results").textContent = "";
      this.part(".passage").hidden = true;
    }

    async search() {
      const s = this.strings;
      const query = this.part("[name=q]").value.trim();
      if (!query) return;
      this.reset();
      this.setStatus(s.searching);
      try {
        const reply = await this.client.search(this.getAttribute("collection"), { query, k: 5 });
        const list = this.part(".results");
        const items = [];
        for (const hit of reply.hits) {
          const li = document.createElement("li");
          const text = document.createElement("div");
          text.className = "text";
          text.textContent = hit.text;
          const meta = document.createElement("div");
          meta.className = "meta";
          meta.textContent = `${hit.document_id} · #${hit.chunk_index} · ${hit.language} · ${s.score} ${hit.score.toFixed(3)}`;
          li.append(text, meta);
          list.append(li);
          items.push({ element: text, text: hit.text });
        }
        this.setStatus(reply.hits.length ? "" : s.nothing);
        await highlightPassages(this.client, query, items);
      } catch (error) {
        this.fail(error);
      }
    }

    async ask() {
      const s = this.strings;
      const question = this.part("[name=q]").value.trim();
      if (!question) return;
      this.reset();
      this.controller = new AbortController();
      this.part("[name=stop]").hidden = false;
      this.setStatus(s.answering);
      const answer = this.part(".answer");
      let text = "";
      let sources = [];
      const open = (number) => this.showSource(sources.find((source) => source.number === number));
      try {
        const events = this.client.events(
          "/v1/rag/answer",
          { question, collection: this.getAttribute("collection"), stream: true },
          this.controller.signal,
        );
        for await (const event of events) {
          if (event.type === "sources") {
            sources = event.sources;
            if (!event.grounded) answer.dataset.state = "idk";
          } else if (event.type === "delta" || event.type === "done") {
            text += event.text || "";
            renderAnswer(answer, text, open, (n) => `${s.source} ${n}`);
          }
        }
        this.setStatus(answer.dataset.state === "idk" ? s.idk : "");
      } catch (error) {
        this.fail(error);
      } finally {
        this.part("[name=stop]").hidden = true;
        this.controller = null;
      }
    }

    showSource(source) {
      if (!source) return;
      const panel = this.part(".passage");
      panel.hidden = false;
      panel.textContent = "";
      const meta = document.createElement("div");
      meta.className = "meta";
      meta.textContent = `[${source.number}] ${source.document_id} · #${source.chunk_index} · ${source.language}`;
      const text = document.createElement("div");
      text.textContent = source.text;
      panel.append(meta, text);
    }

    stop() {
      if (this.controller) {
        this.controller.abort();
        this.setStatus(this.strings.stopped);
      }
    }
  }

  window.BabelSearch = {
    ApiError,
    Client,
    queryTerms,
    markTerms,
    highlightPassages,
    renderAnswer,
    pickLanguage,
  };
  if (!customElements.get("babel-search")) customElements.define("babel-search", BabelSearchElement);
})();
