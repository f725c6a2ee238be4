//! The lab's byte vocabulary (token id = byte value) as a Hugging Face fast tokenizer:
//! a byte-level pre-tokenizer (GPT-2's reversible byte → printable-character map, no regex
//! split, no prefix space) in front of a BPE model with the 256 byte characters as its
//! vocabulary and no merges, so text becomes exactly its UTF-8 bytes, and a byte-level decoder
//! turns ids back into text. No special tokens: the lab trains on raw bytes, without BOS/EOS.

use serde_json::{Value, json};

use crate::data::tokenizer::Vocabulary;

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes map to themselves, the other 68 to
/// U+0100 onwards in byte order (space → 'Ġ', newline → 'Ċ').
pub fn byte_char(byte: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(byte) {
        return char::from(byte);
    }
    let rank = (0..byte).filter(|&b| !printable(b)).count() as u32;
    char::from_u32(256 + rank).expect("U+0100..U+0143 are chars")
}

fn byte_level() -> Value {
    json!({
        "type": "ByteLevel",
        "add_prefix_space": false,
        "trim_offsets": false,
        "use_regex": false
    })
}

/// `tokenizer.json`.
pub fn tokenizer_json() -> Value {
    let vocab: serde_json::Map<String, Value> = (0..=255u8)
        .map(|b| (byte_char(b).to_string(), json!(b)))
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": byte_level(),
        "post_processor": null,
        "decoder": byte_level(),
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": []
        }
    })
}

/// Texts whose ids the export records (`tokenizer_reference.json`), so that
/// scripts/hf-check.py can compare transformers' `AutoTokenizer` with the lab's tokenizer.
pub const REFERENCE_TEXTS: [&str; 5] = [
    "Hello, world!",
    "  two leading spaces\nand a newline\ttab",
    "café, naïve, 東京, emoji 🙂",
    "x = 3 * (4 + 5)  # code\n",
    "q: what is the capital of x? a: y.",
];

/// `tokenizer.json` of a run's vocabulary: the byte tokenizer above, or the run's own.
pub fn vocabulary_json(vocab: &Vocabulary) -> anyhow::Result<Value> {
    match vocab {
        Vocabulary::Bytes => Ok(tokenizer_json()),
        Vocabulary::Subword(t) => {
            let text = t.inner.to_string(false).map_err(anyhow::Error::msg)?;
            Ok(serde_json::from_str(&text)?)
        }
    }
}

/// `tokenizer_reference.json`: [`REFERENCE_TEXTS`] and the lab's ids for each.
pub fn reference_json(vocab: &Vocabulary) -> anyhow::Result<Value> {
    let texts: Vec<String> = REFERENCE_TEXTS.iter().map(|t| t.to_string()).collect();
    let ids = vocab.encode_batch(texts.clone())?;
    Ok(json!({ "texts": texts, "ids": ids }))
}

/// `tokenizer_config.json`: the fast tokenizer, no BOS/EOS added, `seq_len` as its maximum
/// length; a subword tokenizer's end-of-text token as its EOS.
pub fn tokenizer_config_json(seq_len: usize, eos: Option<&(String, u32)>) -> Value {
    let mut config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": seq_len,
        "add_bos_token": false,
        "add_eos_token": false,
        "clean_up_tokenization_spaces": false
    });
    if let Some((token, _)) = eos {
        config["eos_token"] = json!(token);
    }
    config
}

/// `generation_config.json`: `lab sample`'s defaults (temperature 0.8 over all tokens), at
/// most the trained context; generation stops at `max_length`, or at EOS where there is one.
pub fn generation_config_json(seq_len: usize, eos: Option<&(String, u32)>) -> Value {
    json!({
        "do_sample": true,
        "temperature": 0.8,
        "top_k": 0,
        "max_length": seq_len,
        "bos_token_id": null,
        "eos_token_id": eos.map(|(_, id)| *id),
        "pad_token_id": null
    })
}
