//! The stand-in model's output: a deterministic, JSON-shaped text derived
//! from the prompt, so that a test can check that what came back was computed
//! from what was sent (the sha2-256 of the prompt, its size, its first and
//! last words) without any real model.
//!
//! ```json
//! {"model":"deepseek-ai/deepseek-v3","prompt_sha256":"<64 hex>","prompt_chars":N,
//!  "prompt_words":N,"prompt_lines":N,"head":"<first 40 words>","tail":"<last 40 words>",
//!  "summary":"<one sentence>"}
//! ```
//!
//! Like a language model on Replicate, the output is a list of text chunks;
//! joined, they are the JSON text above.

use sha2::{Digest, Sha256};

/// Words kept at each end of the prompt.
const EDGE_WORDS: usize = 40;
/// Characters per output chunk.
const CHUNK_CHARS: usize = 48;

/// The full output text for `prompt` as `model`.
pub fn output_text(model: &str, prompt: &str) -> String {
    let words: Vec<&str> = prompt.split_whitespace().collect();
    let head = words[..words.len().min(EDGE_WORDS)].join(" ");
    let tail = words[words.len().saturating_sub(EDGE_WORDS)..].join(" ");
    let chars = prompt.chars().count();
    let lines = prompt.lines().count();
    let summary = format!(
        "A prompt of {} words in {} lines ({} characters), beginning \"{}\".",
        words.len(),
        lines,
        chars,
        words[..words.len().min(6)].join(" ")
    );
    serde_json::json!({
        "model": model,
        "prompt_sha256": hex::encode(Sha256::digest(prompt.as_bytes())),
        "prompt_chars": chars,
        "prompt_words": words.len(),
        "prompt_lines": lines,
        "head": head,
        "tail": tail,
        "summary": summary,
    })
    .to_string()
}

/// [`output_text`] cut into chunks, as a streaming model's output list.
pub fn output_chunks(model: &str, prompt: &str) -> Vec<String> {
    let text = output_text(model, prompt);
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(CHUNK_CHARS)
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_from_the_prompt_and_is_deterministic() {
        let prompt = "Summarise my data\n\n{\"steps\": 1200, \"city\": \"Lisbon\"}";
        let a = output_text("m/x", prompt);
        assert_eq!(a, output_text("m/x", prompt));
        assert_ne!(a, output_text("m/x", "Summarise my data"));
        let v: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(
            v["prompt_sha256"],
            hex::encode(Sha256::digest(prompt.as_bytes()))
        );
        assert_eq!(v["prompt_chars"], prompt.chars().count());
        assert!(v["tail"].as_str().unwrap().contains("\"Lisbon\"}"));
        assert_eq!(output_chunks("m/x", prompt).concat(), a);
    }

    #[test]
    fn empty_and_multibyte_prompts() {
        let v: serde_json::Value = serde_json::from_str(&output_text("m", "")).unwrap();
        assert_eq!(v["prompt_words"], 0);
        let p = "é".repeat(100);
        assert_eq!(output_chunks("m", &p).concat(), output_text("m", &p));
    }
}
