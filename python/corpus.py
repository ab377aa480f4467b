"""Texts for the tiny test model: the tokenizer's training text and the golden corpus.

No data set can be downloaded here, so the SentencePiece training text is assembled
from the sentences below, a few per language, in the scripts that XLM-RoBERTa covers.
"""

TRAINING_SENTENCES = {
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "Search engines rank documents by their relevance to a query.",
        "Dense vectors, sparse weights and multi-vector representations work together.",
        "This is a test of the multilingual embedding model.",
        "What is the capital of France? Paris is the capital of France.",
        "Retrieval augmented generation needs fast and accurate search.",
    ],
    "es": [
        "¡Texto de prueba! El rápido zorro marrón salta sobre el perro perezoso.",
        "Los motores de búsqueda ordenan los documentos por relevancia.",
        "Madrid es la capital de España y tiene muchos museos.",
    ],
    "pt": [
        "O rápido cão castanho pula sobre a raposa preguiçosa.",
        "A recuperação de informação é uma área da computação.",
    ],
    "fr": [
        "Testez le texte ! Le renard brun rapide saute par-dessus le chien paresseux.",
        "Les moteurs de recherche classent les documents par pertinence.",
        "Paris est la capitale de la France.",
    ],
    "de": [
        "Testtext! Der schnelle braune Fuchs springt über den faulen Hund.",
        "Die Straße ist lang, und die Grüße sind herzlich.",
        "Suchmaschinen ordnen Dokumente nach ihrer Relevanz.",
    ],
    "it": [
        "La volpe marrone veloce salta sopra il cane pigro.",
        "Roma è la capitale d'Italia.",
    ],
    "ru": [
        "Текст для теста! Быстрая коричневая лиса прыгает через ленивую собаку.",
        "Поисковые системы ранжируют документы по релевантности.",
        "Москва является столицей России.",
    ],
    "kk": [
        "Сынақ мәтіні! Жылдам қоңыр түлкі жалқау иттің үстінен секіреді.",
        "Астана Қазақстанның астанасы.",
    ],
    "uz": [
        "Тестни текст! Тез жигарранг тулки дангаса ит устидан сакрайди.",
        "Toshkent O'zbekistonning poytaxti.",
    ],
    "zh": [
        "測試文字！敏捷的棕色狐狸跳過了懶狗。",
        "我们正在测试多语言嵌入模型。搜索引擎按相关性对文档进行排序。",
        "北京是中国的首都。",
    ],
    "ja": [
        "東京は日本の首都です。ひらがなとカタカナと漢字を使います。",
        "検索エンジンは文書を関連性で並べ替えます。",
    ],
    "ko": [
        "서울은 한국의 수도입니다. 빠른 갈색 여우가 게으른 개를 뛰어넘습니다.",
        "검색 엔진은 관련성에 따라 문서의 순위를 매깁니다.",
    ],
    "hi": [
        "परीक्षण पाठ! तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
        "यह एक परीक्षण वाक्य है। नई दिल्ली भारत की राजधानी है।",
    ],
    "vi": [
        "Kiểm tra văn bản! Con cáo nâu nhanh nhẹn nhảy qua con chó lười.",
        "Hà Nội là thủ đô của Việt Nam.",
    ],
    "ar": [
        "مرحبا بالعالم، هذا نص تجريبي.",
        "الثعلب البني السريع يقفز فوق الكلب الكسول.",
    ],
    "he": [
        "שלום עולם, זהו טקסט בדיקה.",
        "ירושלים היא עיר עתיקה.",
    ],
    "el": [
        "Γειά σου κόσμε! Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.",
        "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    ],
    "tr": [
        "İstanbul büyük bir şehirdir. Hızlı kahverengi tilki tembel köpeğin üzerinden atlar.",
        "Arama motorları belgeleri alaka düzeyine göre sıralar.",
    ],
    "pl": [
        "Szybki brązowy lis przeskakuje nad leniwym psem.",
        "Warszawa jest stolicą Polski.",
    ],
    "th": [
        "สวัสดีครับ นี่คือข้อความทดสอบ",
        "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    ],
    "code": [
        "fn main() { println!(\"{}\", 1 + 2); }",
        "def encode(texts, max_length=8192):\n    return model(texts)",
        "https://example.com/search?q=bge-m3&lang=en#results",
        "SELECT id, title FROM documents WHERE score > 0.5 ORDER BY score DESC;",
        "3.14159 2,718 1e-10 42 100% $5.00 #tag @user",
    ],
}

MULTILINGUAL_SENTENCE = (
    "A test text! Texto de prueba! Текст для теста! 測試文字! Testtext! Testez le texte! "
    "Сынақ мәтіні! Тестни текст! परीक्षण पाठ! Kiểm tra văn bản!"
)


def training_text() -> str:
    """Return the tokenizer training text, one sentence a line."""
    lines = [sentence for sentences in TRAINING_SENTENCES.values() for sentence in sentences]
    lines.append(MULTILINGUAL_SENTENCE)
    # Every pair of sentences once more, so that SentencePiece sees each piece in
    # several contexts and keeps a vocabulary of useful size.
    lines += [f"{a} {b}" for a, b in zip(lines, lines[1:] + lines[:1])]
    return "\n".join(lines) + "\n"


def long_text() -> str:
    """Return a text well over 8192 tokens for the tiny tokenizer."""
    paragraph = " ".join(sentences[0] for sentences in TRAINING_SENTENCES.values())
    return "\n\n".join(f"{number}. {paragraph}" for number in range(20))


def golden_corpus() -> list[str]:
    """Return the texts whose reference outputs are recorded, hard cases included."""
    return [
        MULTILINGUAL_SENTENCE,
        "",
        " ",
        "   \t  ",
        "\n\n",
        "I love pizza 🍕🍕 and my family 👩‍👩‍👧 🎉",
        "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
        "bell\u0007 null\u0000 escape\u001b delete\u007f end",
        "cafe\u0301 nai\u0308ve Ame\u0301lie",
        "café naïve Amélie",
        "Ｆｕｌｌｗｉｄｔｈ ＬＡＴＩＮ １２３ ！",
        "مرحبا بالعالم، هذا نص تجريبي.",
        "שלום עולם, זהו טקסט בדיקה.",
        "我们正在测试多语言嵌入模型。",
        "東京は日本の首都です。ひらがなとカタカナ。",
        "서울은 한국의 수도입니다.",
        "fn main() { println!(\"{}\", 1 + 2); }",
        "def f(x):\n    return x * 2\n",
        "https://example.com/path?query=1&lang=ru#section",
        "contact: user.name+tag@example.org",
        "the the the the the the the the",
        "buffalo " * 40,
        "<s> start </s> end <pad> pad <unk> unknown",
        "a<s>b</s>c<pad>d<unk>e",
        "<pad><pad> padding inside <pad>",
        "trailing space   ",
        "   leading space",
        "many     spaces    inside",
        "line one\nline two\r\nline three",
        "para\u2028sep\u0085next\u000bvt\u000cff",
        "3.14159 2,718 1e-10 42",
        "Hello мир 世界 κόσμε",
        "Γειά σου κόσμε!",
        "สวัสดีครับ นี่คือข้อความทดสอบ",
        "यह एक परीक्षण वाक्य है।",
        "Сынақ мәтіні! Астана Қазақстанның астанасы.",
        "Kiểm tra văn bản! Hà Nội là thủ đô của Việt Nam.",
        "Straße Grüße İstanbul ıslak",
        "ﬁ ﬂ Ⅻ ½ ㎏ ①",
        "what is BGE-M3?",
        "a",
        "!!! ??? ...",
        " ".join(TRAINING_SENTENCES["en"] + TRAINING_SENTENCES["fr"]),
        long_text(),
    ]
