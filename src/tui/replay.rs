//! `console --replay FILE`: a recording shown through the same views, frame by frame, in place
//! of the admin reads. Keys (Dolphie's): `p` pauses and resumes playback, `[` / `]` step one
//! frame back / forward, `T` jumps to a time. Playback moves one frame per refresh interval.
//!
//! Stepping back cannot undo the model (rates and sparklines come from successive frames), so
//! every jump rebuilds it from the frames before the target, as many as a sparkline holds.

use crate::control::Snapshot;
use crate::recording::Recording;

use super::event::Key;
use super::model::HISTORY;
use crate::display::date_clock;

/// What the loop must do after a replay key or tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Show the next frame on top of the current model.
    Next,
    /// Rebuild the model from [`Replay::window`].
    Jump,
    /// Only the replay line changed (pause, prompt).
    Redraw,
}

pub struct Replay {
    frames: Vec<Snapshot>,
    pos: usize,
    pub playing: bool,
    /// The `T` prompt's input while it is open.
    pub prompt: Option<String>,
    /// Why the last jump failed, until the next key.
    pub error: Option<String>,
    pub source: String,
}

impl Replay {
    pub fn new(recording: Recording) -> Replay {
        Replay {
            frames: recording.frames,
            pos: 0,
            playing: true,
            prompt: None,
            error: None,
            source: recording.header.source,
        }
    }

    pub fn current(&self) -> &Snapshot {
        &self.frames[self.pos]
    }

    /// The frames that rebuild the model up to the current one, oldest first.
    pub fn window(&self) -> &[Snapshot] {
        &self.frames[self.pos.saturating_sub(HISTORY - 1)..=self.pos]
    }

    /// A playback tick: the next frame, or stop at the last.
    pub fn tick(&mut self) -> Option<Move> {
        if !self.playing {
            return None;
        }
        if self.pos + 1 < self.frames.len() {
            self.pos += 1;
            Some(Move::Next)
        } else {
            self.playing = false;
            Some(Move::Redraw)
        }
    }

    /// Handles a replay key; `None` leaves the key to the console.
    pub fn key(&mut self, key: Key) -> Option<Move> {
        if let Some(input) = &mut self.prompt {
            match key {
                Key::Esc => self.prompt = None,
                Key::Backspace => {
                    input.pop();
                }
                Key::Enter => {
                    let input = self.prompt.take().unwrap_or_default();
                    return Some(match self.seek(&input) {
                        Ok(()) => Move::Jump,
                        Err(e) => {
                            self.error = Some(e);
                            Move::Redraw
                        }
                    });
                }
                Key::Char(c) if input.len() < 16 => input.push(c),
                _ => {}
            }
            return Some(Move::Redraw);
        }
        self.error = None;
        match key {
            Key::Char('p') => {
                self.playing = !self.playing;
                Some(Move::Redraw)
            }
            Key::Char('[') => {
                self.playing = false;
                self.pos = self.pos.saturating_sub(1);
                Some(Move::Jump)
            }
            Key::Char(']') => {
                self.playing = false;
                self.pos = (self.pos + 1).min(self.frames.len() - 1);
                Some(Move::Jump)
            }
            Key::Char('T') => {
                self.playing = false;
                self.prompt = Some(String::new());
                Some(Move::Redraw)
            }
            _ => None,
        }
    }

    /// Goes to the first frame at or after a time: `HH:MM[:SS]` (UTC, as the console shows
    /// times; the first such moment from the recording's start) or `+90s` / `+5m` / `+1h` from
    /// the start.
    pub fn seek(&mut self, input: &str) -> Result<(), String> {
        let first = self.frames[0].taken_at_ms;
        let target = if let Some(offset) = input.trim().strip_prefix('+') {
            let d = crate::display::parse_duration(offset)?;
            first.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        } else {
            let secs = clock_secs(input.trim()).ok_or_else(|| {
                format!("jump to {input:?}: give HH:MM[:SS] (UTC) or +offset like +90s")
            })?;
            let day = first / 86_400_000 * 86_400_000;
            let mut t = day + secs * 1000;
            if t < first {
                t += 86_400_000;
            }
            t
        };
        self.pos = self
            .frames
            .iter()
            .position(|f| f.taken_at_ms >= target)
            .unwrap_or(self.frames.len() - 1);
        Ok(())
    }

    /// The status line's replay part.
    pub fn line(&self) -> String {
        if let Some(input) = &self.prompt {
            return format!("jump to (HH:MM:SS UTC or +90s): {input}_");
        }
        if let Some(e) = &self.error {
            return e.clone();
        }
        format!(
            "REPLAY {} {}/{} {}",
            date_clock(self.current().taken_at_ms),
            self.pos + 1,
            self.frames.len(),
            if self.playing { "playing" } else { "paused" }
        )
    }
}

/// `HH:MM` or `HH:MM:SS` as seconds of the day.
fn clock_secs(s: &str) -> Option<u64> {
    let parts: Vec<u64> = s
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (h, m, sec) = match parts.as_slice() {
        [h, m] => (*h, *m, 0),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    (h < 24 && m < 60 && sec < 60).then_some(h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{Header, FORMAT, VERSION};

    fn replay(times: &[u64]) -> Replay {
        Replay::new(Recording {
            header: Header {
                format: FORMAT.into(),
                version: VERSION,
                started_at_ms: times[0],
                source: "test".into(),
            },
            frames: times
                .iter()
                .map(|&t| Snapshot {
                    taken_at_ms: t,
                    ..Snapshot::default()
                })
                .collect(),
        })
    }

    #[test]
    fn steps_stop_at_both_ends_and_pause_playback() {
        let mut r = replay(&[1_000, 2_000, 3_000]);
        assert_eq!(r.key(Key::Char('[')), Some(Move::Jump));
        assert_eq!(r.current().taken_at_ms, 1_000);
        assert!(!r.playing);
        r.key(Key::Char(']'));
        r.key(Key::Char(']'));
        r.key(Key::Char(']'));
        assert_eq!(r.current().taken_at_ms, 3_000);
        assert_eq!(r.window().len(), 3);
        assert_eq!(r.key(Key::Char('x')), None);
    }

    #[test]
    fn jumps_by_clock_and_by_offset() {
        // 2026-12-05 11:00:00 UTC and one frame a minute.
        let t0 = 1_796_468_400_000;
        let mut r = replay(&[t0, t0 + 60_000, t0 + 120_000]);
        r.seek("11:01").unwrap();
        assert_eq!(r.current().taken_at_ms, t0 + 60_000);
        r.seek("+90s").unwrap();
        assert_eq!(r.current().taken_at_ms, t0 + 120_000);
        r.seek("10:00").unwrap();
        assert_eq!(
            r.current().taken_at_ms,
            t0 + 120_000,
            "past the end: the last frame"
        );
        assert!(r.seek("noon").is_err());
    }
}
