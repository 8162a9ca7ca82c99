"""The RAG prompt, and the fixed answer when nothing relevant was retrieved."""

from __future__ import annotations

from collections.abc import Sequence

from shared.messages.generation import ChatMessage

SYSTEM = (
    "You answer questions using only the numbered passages the user gives you. "
    "After each sentence of your answer, cite the passage it comes from as [n], e.g. [1]. "
    "The passages may be in other languages than the question; answer in {language} anyway. "
    "If the passages do not contain the answer, reply that you don't know; never invent facts."
)

# Said without asking the model when no passage scores as relevant: nothing to ground on.
_NO_ANSWER = {
    "en": "I don't know: the documents I can search do not answer this question.",
    "de": "Ich weiß es nicht: Die durchsuchbaren Dokumente beantworten diese Frage nicht.",
    "es": "No lo sé: los documentos que puedo consultar no responden a esta pregunta.",
    "fr": "Je ne sais pas : les documents que je peux consulter ne répondent pas à cette question.",
    "it": "Non lo so: i documenti che posso consultare non rispondono a questa domanda.",
    "pt": "Não sei: os documentos que posso consultar não respondem a esta pergunta.",
    "nl": "Ik weet het niet: de documenten die ik kan doorzoeken beantwoorden deze vraag niet.",
    "ru": "Не знаю: в доступных мне документах нет ответа на этот вопрос.",
    "ja": "わかりません。検索できる文書にはこの質問の答えがありません。",
    "zh": "我不知道：我能检索的文档没有回答这个问题。",
    "ko": "모르겠습니다. 검색할 수 있는 문서에 이 질문에 대한 답이 없습니다.",
    "ar": "لا أعرف: الوثائق التي يمكنني البحث فيها لا تجيب عن هذا السؤال.",
    "hi": "मुझे नहीं पता: जिन दस्तावेज़ों को मैं खोज सकता हूँ वे इस प्रश्न का उत्तर नहीं देते।",
    "tr": "Bilmiyorum: arayabildiğim belgeler bu soruyu yanıtlamıyor.",
    "pl": "Nie wiem: dokumenty, które mogę przeszukać, nie odpowiadają na to pytanie.",
}


def no_answer(language: str) -> str:
    return _NO_ANSWER.get(language, _NO_ANSWER["en"])


def passage_block(number: int, text: str) -> str:
    return f"[{number}] {text}"


def rag_messages(language_name: str, passages: Sequence[str], question: str) -> list[ChatMessage]:
    """``passages`` are already numbered blocks (``[n] text``), in rank order."""
    body = "Passages:\n" + "\n\n".join(passages) + f"\n\nQuestion: {question}"
    return [
        ChatMessage(role="system", content=SYSTEM.format(language=language_name)),
        ChatMessage(role="user", content=body),
    ]
