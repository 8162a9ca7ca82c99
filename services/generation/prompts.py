"""The RAG prompts: plain text with citations, or the structured reply the engine enforces."""

from __future__ import annotations

from collections.abc import Sequence

from shared.messages.generation import ChatMessage

SYSTEM = (
    "You answer questions using only the numbered passages the user gives you. "
    "After each sentence of your answer, cite the passage it comes from as [n], e.g. [1]. "
    "The passages may be in other languages than the question; answer in {language} anyway. "
    "If the passages do not contain the answer, reply that you don't know; never invent facts."
)

SYSTEM_JSON = (
    "You answer questions using only the numbered passages the user gives you, and reply in "
    'JSON. Set "answerable" to true only if the passages contain the answer to the question; '
    'then write the answer in "answer", in {language}, and after each sentence cite the '
    "passage it comes from as [n], e.g. [1]. The passages may be in other languages than the "
    "question; write the answer in {language} anyway. If the passages do not contain the "
    'answer, set "answerable" to false and leave "answer" empty; never invent facts.'
)
"""With the engine enforcing ``answer_json.ANSWER_SCHEMA``: the model also judges whether the
passages answer the question."""


def passage_block(number: int, text: str) -> str:
    return f"[{number}] {text}"


def rag_messages(
    language_name: str, passages: Sequence[str], question: str, structured: bool = False
) -> list[ChatMessage]:
    """``passages`` are already numbered blocks (``[n] text``), in rank order; ``structured``:
    the model replies ``{"answerable": …, "answer": …}`` (:data:`SYSTEM_JSON`)."""
    system = SYSTEM_JSON if structured else SYSTEM
    body = "Passages:\n" + "\n\n".join(passages) + f"\n\nQuestion: {question}"
    return [
        ChatMessage(role="system", content=system.format(language=language_name)),
        ChatMessage(role="user", content=body),
    ]
