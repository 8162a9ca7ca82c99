"""The fixed "I don't know" of a RAG answer, in every language the service offers.

Said without the model when no passage is relevant, and in place of the model's words when
it judges that the passages do not answer the question. A language without a sentence here
(fastText identifies 176) gets the model's own translation of the English one.
"""

from __future__ import annotations

NO_ANSWER: dict[str, str] = {
    "ar": "لا أعرف: الوثائق التي يمكنني البحث فيها لا تجيب عن هذا السؤال.",
    "bg": "Не знам: документите, в които мога да търся, не отговарят на този въпрос.",
    "bn": "আমি জানি না: আমি যে নথিগুলো খুঁজতে পারি, সেগুলোতে এই প্রশ্নের উত্তর নেই।",
    "ca": "No ho sé: els documents que puc consultar no responen aquesta pregunta.",
    "cs": "Nevím: dokumenty, které mohu prohledávat, na tuto otázku neodpovídají.",
    "da": "Det ved jeg ikke: de dokumenter, jeg kan søge i, besvarer ikke dette spørgsmål.",
    "de": "Ich weiß es nicht: Die durchsuchbaren Dokumente beantworten diese Frage nicht.",
    "el": "Δεν ξέρω: τα έγγραφα που μπορώ να αναζητήσω δεν απαντούν σε αυτή την ερώτηση.",
    "en": "I don't know: the documents I can search do not answer this question.",
    "es": "No lo sé: los documentos que puedo consultar no responden a esta pregunta.",
    "et": "Ma ei tea: dokumendid, millest ma saan otsida, sellele küsimusele ei vasta.",
    "fa": "نمی‌دانم: اسنادی که می‌توانم در آن‌ها جست‌وجو کنم به این پرسش پاسخ نمی‌دهند.",
    "fi": "En tiedä: asiakirjat, joista voin hakea, eivät vastaa tähän kysymykseen.",
    "fr": "Je ne sais pas : les documents que je peux consulter ne répondent pas à cette question.",
    "he": "אני לא יודע: המסמכים שאני יכול לחפש בהם אינם עונים על השאלה הזאת.",
    "hi": "मुझे नहीं पता: जिन दस्तावेज़ों को मैं खोज सकता हूँ वे इस प्रश्न का उत्तर नहीं देते।",
    "hu": "Nem tudom: a dokumentumok, amelyekben keresni tudok, nem válaszolnak erre a kérdésre.",
    "id": "Saya tidak tahu: dokumen yang dapat saya cari tidak menjawab pertanyaan ini.",
    "it": "Non lo so: i documenti che posso consultare non rispondono a questa domanda.",
    "ja": "わかりません。検索できる文書にはこの質問の答えがありません。",
    "ko": "모르겠습니다. 검색할 수 있는 문서에 이 질문에 대한 답이 없습니다.",
    "lt": "Nežinau: dokumentai, kuriuose galiu ieškoti, į šį klausimą neatsako.",
    "lv": "Es nezinu: dokumenti, kuros varu meklēt, uz šo jautājumu neatbild.",
    "nl": "Ik weet het niet: de documenten die ik kan doorzoeken beantwoorden deze vraag niet.",
    "no": "Jeg vet ikke: dokumentene jeg kan søke i, svarer ikke på dette spørsmålet.",
    "pl": "Nie wiem: dokumenty, które mogę przeszukać, nie odpowiadają na to pytanie.",
    "pt": "Não sei: os documentos que posso consultar não respondem a esta pergunta.",
    "ro": "Nu știu: documentele în care pot căuta nu răspund la această întrebare.",
    "ru": "Не знаю: в доступных мне документах нет ответа на этот вопрос.",
    "sk": "Neviem: dokumenty, v ktorých môžem vyhľadávať, na túto otázku neodpovedajú.",
    "sl": "Ne vem: dokumenti, po katerih lahko iščem, ne odgovarjajo na to vprašanje.",
    "sv": "Jag vet inte: dokumenten som jag kan söka i besvarar inte den här frågan.",
    "th": "ฉันไม่ทราบ เอกสารที่ฉันค้นหาได้ไม่มีคำตอบสำหรับคำถามนี้",
    "tr": "Bilmiyorum: arayabildiğim belgeler bu soruyu yanıtlamıyor.",
    "uk": "Не знаю: документи, у яких я можу шукати, не відповідають на це запитання.",
    "ur": "مجھے نہیں معلوم: جن دستاویزات میں میں تلاش کر سکتا ہوں وہ اس سوال کا جواب نہیں دیتیں۔",
    "vi": "Tôi không biết: các tài liệu tôi có thể tìm kiếm không trả lời câu hỏi này.",
    "zh": "我不知道：我能检索的文档没有回答这个问题。",
    "zh-Hant": "我不知道：我能檢索的文件沒有回答這個問題。",
}


def no_answer(language: str) -> str | None:
    """The fixed sentence for ``language``; None when there is none (the model says it)."""
    return NO_ANSWER.get(language)


def refusal_prompt(language: str, name: str) -> str:
    """Asks the model for the English sentence in a language without a fixed one."""
    called = f"{name} (ISO 639 code {language})" if name != language else f"ISO 639 {language}"
    return (
        f"Translate into the language {called}. Reply with the translation only.\n\n"
        f"{NO_ANSWER['en']}"
    )
