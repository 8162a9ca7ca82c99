// Ask: the RAG answer streams in token by token; [n] become citation chips that open the
// cited passage in its context; "I don't know" has its own state; Stop cancels the stream
// (the gateway then cancels the generation).
import { openPassage } from "/ui/passage.js";
import { t } from "/ui/i18n.js";

const $ = (selector) => document.querySelector(selector);

export function setupAsk(app) {
  const status = $("#ask-status");
  const answer = $("#answer");
  const sourcesList = $("#sources");
  const stopButton = $("#stop-button");
  let controller = null;
  const chipLabel = (n) => t("source", { n });

  function say(text, error) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(error));
  }

  function renderSources(collection, sources, open) {
    sourcesList.textContent = "";
    $("#sources-title").hidden = !sources.length;
    for (const source of sources) {
      const li = document.createElement("li");
      li.value = source.number;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary source";
      button.textContent = `${source.document_id} · ${source.language} · ${source.score.toFixed(3)}`;
      button.addEventListener("click", () => open(source.number, button));
      li.append(button);
      sourcesList.append(li);
    }
  }

  async function ask(question, collection) {
    controller = new AbortController();
    stopButton.hidden = false;
    $("#ask-button").disabled = true;
    answer.textContent = "";
    answer.dataset.state = "streaming";
    answer.dataset.deltas = "0";
    $("#idk").hidden = true;
    renderSources(collection, [], null);
    say(t("answering"));
    let text = "";
    let sources = [];
    let deltas = 0;
    const open = (number, opener) => {
      const source = sources.find((s) => s.number === number);
      if (source) openPassage(app, collection, source, opener);
    };
    try {
      const events = app.client.events(
        "/v1/rag/answer",
        { question, collection, stream: true, max_tokens: Number($("#answer-length").value) },
        controller.signal,
      );
      for await (const event of events) {
        if (event.type === "sources") {
          sources = event.sources;
          answer.lang = event.language || "";
          if (!event.grounded) {
            answer.dataset.state = "idk";
            $("#idk").hidden = false;
          }
          renderSources(collection, sources, open);
        } else if (event.type === "delta") {
          text += event.text;
          answer.dataset.deltas = String(++deltas);
          window.BabelSearch.renderAnswer(answer, text, open, chipLabel);
        } else if (event.type === "done") {
          text += event.text || "";
          window.BabelSearch.renderAnswer(answer, text, open, chipLabel);
          if (answer.dataset.state !== "idk") {
            answer.dataset.state = "done";
            say(event.cited.length ? t("answered", { n: sources.length }) : t("uncited"));
          } else {
            say("");
          }
        }
      }
    } catch (error) {
      if (error.name === "AbortError") {
        answer.dataset.state = "stopped";
        say(t("stopped"));
      } else {
        answer.dataset.state = "error";
        say(app.describe(error), true);
      }
    } finally {
      controller = null;
      stopButton.hidden = true;
      $("#ask-button").disabled = false;
    }
  }

  $("#ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("#question").value.trim();
    if (question && !controller) ask(question, app.collection());
  });
  stopButton.addEventListener("click", () => {
    controller?.abort();
    $("#question").focus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && controller && !$("#passage-dialog").open) controller.abort();
  });

  return {};
}
