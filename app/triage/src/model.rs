//! Hashed text features and one-vs-rest logistic regression.
//!
//! Features are word unigrams and bigrams plus character 3- to 5-grams of every word
//! (with word boundaries marked), hashed into `2^bits` dimensions: no vocabulary to keep,
//! unseen spellings ("refnd", "reembolço") still share most of their n-grams with the
//! examples. The weights of all labels of a feature sit side by side, so scoring one
//! message touches one cache line per feature.

use crate::text::{Token, TokenKind};

/// A sparse feature vector: (dimension, value) pairs, L2-normalised.
pub type Features = Vec<(u32, f32)>;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Mixes the bits of a hash before it is reduced to a dimension.
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Kinds of features, hashed apart so a word and a character n-gram never collide by design.
const WORD: u8 = 1;
const BIGRAM: u8 = 2;
const CHARS: u8 = 3;

/// Features of a token sequence in a space of `2^bits` dimensions.
pub fn features(tokens: &[Token], bits: u32) -> Features {
    let mask = (1u64 << bits) - 1;
    let mut out: Features = Vec::with_capacity(tokens.len() * 12);
    let mut push = |h: u64| out.push(((finish(h) & mask) as u32, 1.0));
    let mut previous: Option<&str> = None;
    let mut chars: Vec<char> = Vec::with_capacity(32);
    let mut buf = [0u8; 4];
    for token in tokens {
        let text = token.text.as_str();
        push(fnv(fnv(FNV_OFFSET, &[WORD]), text.as_bytes()));
        if let Some(p) = previous {
            push(fnv(
                fnv(fnv(fnv(FNV_OFFSET, &[BIGRAM]), p.as_bytes()), b" "),
                text.as_bytes(),
            ));
        }
        previous = Some(text);
        if token.kind != TokenKind::Word {
            continue;
        }
        chars.clear();
        chars.push('<');
        chars.extend(text.chars().take(30));
        chars.push('>');
        if chars.len() <= 4 {
            // Short words are already whole-word features.
            continue;
        }
        for n in 3..=5 {
            for window in chars.windows(n) {
                let mut h = fnv(FNV_OFFSET, &[CHARS]);
                for c in window {
                    h = fnv(h, c.encode_utf8(&mut buf).as_bytes());
                }
                push(h);
            }
        }
    }
    let norm = (out.len() as f32).sqrt();
    if norm > 0.0 {
        for f in &mut out {
            f.1 /= norm;
        }
    }
    out
}

/// One training example: features and the indices of its positive labels.
pub struct Example<'a> {
    /// Features of the text.
    pub features: &'a Features,
    /// Labels that apply; every other label of the model is a negative.
    pub labels: &'a [usize],
}

/// One-vs-rest logistic regression over hashed features.
#[derive(Debug, Clone)]
pub struct LinearModel {
    labels: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct Training {
    /// Passes over the examples.
    pub epochs: u32,
    /// Initial step size.
    pub learning_rate: f32,
    /// Size of the feature space, in bits.
    pub bits: u32,
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

impl LinearModel {
    /// Trains one binary classifier per label with stochastic gradient descent. Positives
    /// are weighted up so that rare labels are not drowned by the negatives.
    pub fn train(labels: usize, examples: &[Example<'_>], training: Training) -> Self {
        let dims = 1usize << training.bits;
        let mut model = LinearModel {
            labels,
            weights: vec![0.0; dims * labels],
            bias: vec![0.0; labels],
        };
        if labels == 0 || examples.is_empty() {
            return model;
        }
        let mut positives = vec![0usize; labels];
        for e in examples {
            for &l in e.labels {
                if l < labels {
                    positives[l] += 1;
                }
            }
        }
        let positive_weight: Vec<f32> = positives
            .iter()
            .map(|&p| {
                let negatives = examples.len().saturating_sub(p) as f32;
                (negatives / p.max(1) as f32).sqrt().clamp(1.0, 6.0)
            })
            .collect();
        // A fixed permutation per epoch keeps training deterministic without a RNG crate.
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = vec![0.0f32; labels];
        let mut target = vec![0.0f32; labels];
        for epoch in 0..training.epochs {
            for i in (1..order.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                order.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let rate = training.learning_rate / (1.0 + epoch as f32 * 0.3);
            for &index in &order {
                let example = &examples[index];
                z.copy_from_slice(&model.bias);
                model.accumulate(example.features, &mut z);
                target.iter_mut().for_each(|t| *t = 0.0);
                for &l in example.labels {
                    if l < labels {
                        target[l] = 1.0;
                    }
                }
                for l in 0..labels {
                    let p = sigmoid(z[l]);
                    let weight = if target[l] > 0.0 {
                        positive_weight[l]
                    } else {
                        1.0
                    };
                    z[l] = rate * weight * (target[l] - p);
                    model.bias[l] += z[l];
                }
                for &(d, v) in example.features {
                    let row = d as usize * labels;
                    for (w, g) in model.weights[row..row + labels].iter_mut().zip(&z) {
                        *w += g * v;
                    }
                }
            }
        }
        model
    }

    fn accumulate(&self, features: &Features, z: &mut [f32]) {
        for &(d, v) in features {
            let row = d as usize * self.labels;
            if let Some(weights) = self.weights.get(row..row + self.labels) {
                for (acc, w) in z.iter_mut().zip(weights) {
                    *acc += w * v;
                }
            }
        }
    }

    /// Raw scores (logits), one per label.
    pub fn logits(&self, features: &Features) -> Vec<f32> {
        let mut z = self.bias.clone();
        self.accumulate(features, &mut z);
        z
    }
}

/// Probability of a logit.
pub fn probability(logit: f32) -> f32 {
    sigmoid(logit)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::text::Normalizer;

    #[test]
    fn model_learns_to_separate_two_labels() {
        let n = Normalizer::default();
        let texts = [
            ("where is my parcel", 0),
            ("track my package", 0),
            ("i want my money back", 1),
            ("refund me", 1),
        ];
        let feats: Vec<Features> = texts
            .iter()
            .map(|(t, _)| features(&n.tokens(t, 100), 12))
            .collect();
        let labels: Vec<[usize; 1]> = texts.iter().map(|(_, l)| [*l]).collect();
        let examples: Vec<Example<'_>> = feats
            .iter()
            .zip(&labels)
            .map(|(f, l)| Example {
                features: f,
                labels: l,
            })
            .collect();
        let model = LinearModel::train(
            2,
            &examples,
            Training {
                epochs: 20,
                learning_rate: 0.5,
                bits: 12,
            },
        );
        let z = model.logits(&features(&n.tokens("where is the package", 100), 12));
        assert!(z[0] > z[1], "{z:?}");
        let z = model.logits(&features(&n.tokens("money back please", 100), 12));
        assert!(z[1] > z[0], "{z:?}");
    }

    #[test]
    fn empty_text_has_no_features() {
        assert!(features(&[], 12).is_empty());
    }
}
