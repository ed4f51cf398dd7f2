//! Keys are data: every [`Action`] has a list of bindings per [`Context`]. The footer and the
//! help popup are generated from the live map ([`KeyMap::hint`]), so they cannot drift from
//! what the keys do. Overrides come from a TOML file (`[global] quit = ["q", "ctrl-c"]`).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

use super::msg::Action;

/// One key, with modifiers. Shift is ignored when matching: terminals disagree about whether
/// `?` or `R` carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub const fn plain(code: KeyCode) -> Key {
        Key {
            code,
            mods: KeyModifiers::NONE,
        }
    }

    pub const fn ch(c: char) -> Key {
        Key::plain(KeyCode::Char(c))
    }

    pub const fn ctrl(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            mods: KeyModifiers::CONTROL,
        }
    }

    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let strip = |m: KeyModifiers| m - KeyModifiers::SHIFT;
        let code = match (self.code, ev.code) {
            (KeyCode::Char(a), KeyCode::Char(b)) => {
                a == b || (self.mods.contains(KeyModifiers::CONTROL) && a.eq_ignore_ascii_case(&b))
            }
            (a, b) => a == b,
        };
        code && strip(self.mods) == strip(ev.modifiers)
    }

    /// How the key is written in the footer and help (`←`, `Tab`, `C-c`).
    pub fn display(&self, ascii: bool) -> String {
        let name = match self.code {
            KeyCode::Left => if ascii { "Left" } else { "←" }.to_string(),
            KeyCode::Right => if ascii { "Right" } else { "→" }.to_string(),
            KeyCode::Up => if ascii { "Up" } else { "↑" }.to_string(),
            KeyCode::Down => if ascii { "Down" } else { "↓" }.to_string(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Backspace => "Bksp".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Char(' ') => "Space".into(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("C-{name}")
        } else if self.mods.contains(KeyModifiers::ALT) {
            format!("M-{name}")
        } else {
            name
        }
    }

    /// Reads `q`, `ctrl-c`, `left`, `shift-tab`, `enter`, `esc`, `space`, `f1`.
    pub fn parse(s: &str) -> Result<Key, String> {
        let lower = s.to_ascii_lowercase();
        let (mods, rest) = if let Some(r) = lower.strip_prefix("ctrl-") {
            (KeyModifiers::CONTROL, r)
        } else if let Some(r) = lower.strip_prefix("alt-") {
            (KeyModifiers::ALT, r)
        } else {
            (KeyModifiers::NONE, lower.as_str())
        };
        let code = match rest {
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "tab" => KeyCode::Tab,
            "shift-tab" | "backtab" => KeyCode::BackTab,
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "backspace" => KeyCode::Backspace,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "space" => KeyCode::Char(' '),
            f if f.starts_with('f') && f.len() > 1 && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            _ => {
                // a single character keeps its case (`R` is not `r`)
                let raw = &s[s.len() - rest.len()..];
                let mut chars = raw.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(c),
                    _ => return Err(format!("unknown key `{s}`")),
                }
            }
        };
        Ok(Key { code, mods })
    }
}

/// Where a key is read: most keys are global; a confirmation and a text prompt have their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    Global,
    Confirm,
    /// A text field: unbound printable keys are typed into it.
    Prompt,
}

impl Context {
    pub const ALL: [Context; 3] = [Context::Global, Context::Confirm, Context::Prompt];

    pub fn name(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::Confirm => "confirm",
            Context::Prompt => "prompt",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Keys",
            Context::Confirm => "In a confirmation",
            Context::Prompt => "In a prompt or filter",
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeyMap {
    bindings: Vec<(Context, Action, Vec<Key>)>,
    /// Write keys in ASCII (`Left` for `←`).
    pub ascii: bool,
}

impl Default for KeyMap {
    fn default() -> Self {
        use Action::{
            AllRows, Back, Cancel, Complete, Deny, Diff, Down, Filter, Granularity, Help, Lesions,
            LogCounts, Mark, Method, NewRun, NextPane, Plot, PrevPane, Quit, RatioNext, RatioPrev,
            Replay, Rerun, Select, SpectrumSource, Theme, Up,
        };
        use Context::{Global, Prompt};
        use KeyCode as K;
        let p = Key::plain;
        let c = Key::ch;
        let bindings = vec![
            (Global, RatioPrev, vec![p(K::Left), c('h'), c('[')]),
            (Global, RatioNext, vec![p(K::Right), c('l'), c(']')]),
            (Global, Granularity, vec![c('g')]),
            (Global, Method, vec![c('M')]),
            (Global, Lesions, vec![c('b')]),
            (Global, NextPane, vec![p(K::Tab)]),
            (Global, PrevPane, vec![p(K::BackTab)]),
            (Global, Select, vec![p(K::Enter)]),
            (Global, Back, vec![p(K::Esc)]),
            (Global, Up, vec![p(K::Up), c('k')]),
            (Global, Down, vec![p(K::Down), c('j')]),
            (Global, Rerun, vec![c('r')]),
            (Global, Cancel, vec![c('c')]),
            (Global, Mark, vec![c('m')]),
            (Global, Diff, vec![c('d')]),
            (Global, NewRun, vec![c('n')]),
            (Global, Filter, vec![c('/')]),
            (Global, LogCounts, vec![c('L')]),
            (Global, SpectrumSource, vec![c('s')]),
            (Global, Replay, vec![c('R')]),
            (Global, Plot, vec![c('p')]),
            (Global, AllRows, vec![c('a')]),
            (Global, Theme, vec![c('t')]),
            (Global, Help, vec![c('?')]),
            (Global, Quit, vec![c('q'), Key::ctrl('c')]),
            (Context::Confirm, Action::Confirm, vec![c('y'), p(K::Enter)]),
            (Context::Confirm, Deny, vec![c('n'), p(K::Esc)]),
            (Context::Confirm, Quit, vec![Key::ctrl('c')]),
            (Prompt, Select, vec![p(K::Enter)]),
            (Prompt, Back, vec![p(K::Esc)]),
            (Prompt, Up, vec![p(K::Up)]),
            (Prompt, Down, vec![p(K::Down)]),
            (Prompt, Complete, vec![p(K::Tab)]),
            (Prompt, Quit, vec![Key::ctrl('c')]),
        ];
        KeyMap {
            bindings,
            ascii: false,
        }
    }
}

/// The overrides file: one table per context, `action_name = ["key", ...]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    #[serde(default)]
    global: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    confirm: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    prompt: std::collections::BTreeMap<String, Vec<String>>,
}

impl KeyMap {
    /// The action `ev` means in `ctx`, if any.
    pub fn action(&self, ctx: Context, ev: &KeyEvent) -> Option<Action> {
        self.bindings
            .iter()
            .filter(|(c, _, _)| *c == ctx)
            .find(|(_, _, keys)| keys.iter().any(|k| k.matches(ev)))
            .map(|(_, a, _)| *a)
    }

    pub fn keys(&self, ctx: Context, action: Action) -> &[Key] {
        self.bindings
            .iter()
            .find(|(c, a, _)| *c == ctx && *a == action)
            .map(|(_, _, k)| k.as_slice())
            .unwrap_or(&[])
    }

    /// Every key of `action` in the global context, e.g. `←/h/[`; empty when unbound.
    pub fn hint(&self, action: Action) -> String {
        self.hint_in(Context::Global, action)
    }

    pub fn hint_in(&self, ctx: Context, action: Action) -> String {
        self.keys(ctx, action)
            .iter()
            .map(|k| k.display(self.ascii))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The first key of `action` in `ctx` (footer).
    pub fn short_hint(&self, ctx: Context, action: Action) -> Option<String> {
        self.keys(ctx, action)
            .first()
            .map(|k| k.display(self.ascii))
    }

    /// The bindings of one context, in order (help popup).
    pub fn entries(&self, ctx: Context) -> impl Iterator<Item = (Action, &[Key])> {
        self.bindings
            .iter()
            .filter(move |(c, _, _)| *c == ctx)
            .map(|(_, a, k)| (*a, k.as_slice()))
    }

    /// Replaces the bindings named in `src` (TOML); the others keep their defaults.
    pub fn apply_overrides(&mut self, src: &str) -> Result<(), String> {
        let o: Overrides = toml::from_str(src).map_err(|e| e.message().trim().to_string())?;
        for (ctx, table) in [
            (Context::Global, o.global),
            (Context::Confirm, o.confirm),
            (Context::Prompt, o.prompt),
        ] {
            for (name, keys) in table {
                let keys = keys
                    .iter()
                    .map(|k| Key::parse(k))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("[{}] {name}: {e}", ctx.name()))?;
                let slot = self
                    .bindings
                    .iter_mut()
                    .find(|(c, a, _)| *c == ctx && action_name(*a) == name)
                    .ok_or_else(|| format!("[{}] unknown action `{name}`", ctx.name()))?;
                slot.2 = keys;
            }
        }
        Ok(())
    }
}

/// The snake_case name of an action in the overrides file.
pub fn action_name(a: Action) -> String {
    let debug = format!("{a:?}");
    let mut out = String::new();
    for (i, ch) in debug.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventKind;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        let mut e = KeyEvent::new(code, mods);
        e.kind = KeyEventKind::Press;
        e
    }

    #[test]
    fn defaults_cover_the_issue_keys() {
        let k = KeyMap::default();
        let g = Context::Global;
        let none = KeyModifiers::NONE;
        for (code, action) in [
            (KeyCode::Left, Action::RatioPrev),
            (KeyCode::Char('h'), Action::RatioPrev),
            (KeyCode::Char('['), Action::RatioPrev),
            (KeyCode::Right, Action::RatioNext),
            (KeyCode::Char('l'), Action::RatioNext),
            (KeyCode::Char(']'), Action::RatioNext),
            (KeyCode::Tab, Action::NextPane),
            (KeyCode::Enter, Action::Select),
            (KeyCode::Esc, Action::Back),
            (KeyCode::Char('j'), Action::Down),
            (KeyCode::Char('k'), Action::Up),
            (KeyCode::Char('q'), Action::Quit),
            (KeyCode::Char('t'), Action::Theme),
            (KeyCode::Char('/'), Action::Filter),
        ] {
            assert_eq!(k.action(g, &ev(code, none)), Some(action), "{code:?}");
        }
        // terminals send Shift with BackTab, `?` and capitals
        let shift = KeyModifiers::SHIFT;
        assert_eq!(
            k.action(g, &ev(KeyCode::BackTab, shift)),
            Some(Action::PrevPane)
        );
        assert_eq!(
            k.action(g, &ev(KeyCode::Char('?'), shift)),
            Some(Action::Help)
        );
        assert_eq!(
            k.action(g, &ev(KeyCode::Char('R'), shift)),
            Some(Action::Replay)
        );
        assert_eq!(
            k.action(g, &ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            k.action(g, &ev(KeyCode::Char('c'), none)),
            Some(Action::Cancel)
        );
        // in a prompt, letters are text
        assert_eq!(
            k.action(Context::Prompt, &ev(KeyCode::Char('q'), none)),
            None
        );
    }

    #[test]
    fn hints_follow_the_bindings() {
        let mut k = KeyMap::default();
        assert_eq!(k.hint(Action::RatioPrev), "←/h/[");
        assert_eq!(k.hint(Action::Quit), "q/C-c");
        k.ascii = true;
        assert_eq!(k.hint(Action::RatioNext), "Right/l/]");
        k.apply_overrides("[global]\nquit = [\"x\", \"ctrl-q\"]\nratio_next = [\"alt-n\"]\n")
            .unwrap();
        assert_eq!(k.hint(Action::Quit), "x/C-q");
        assert_eq!(k.hint(Action::RatioNext), "M-n");
        assert_eq!(
            k.action(Context::Global, &ev(KeyCode::Char('x'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert!(k.apply_overrides("[global]\nfly = [\"f\"]\n").is_err());
        assert!(k.apply_overrides("[global]\nquit = [\"nope\"]\n").is_err());
    }
}
