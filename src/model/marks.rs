//! Where the sentences and paragraphs of a spoken text start in its audio, for skipping
//! through an e-mail by sentence and by paragraph.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeechMarks {
    /// Sample offsets (8 kHz) where each sentence starts, ascending.
    pub sentences: Vec<usize>,
    /// Sample offsets where each paragraph starts (each also a sentence start).
    pub paragraphs: Vec<usize>,
}

impl SpeechMarks {
    /// No marks: a recording, whose skips go by time.
    pub fn is_empty(&self) -> bool {
        self.sentences.is_empty()
    }
}
