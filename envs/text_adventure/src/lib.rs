//! A small deterministic text adventure in the style of the Zork games that Jericho plays.
//!
//! * Map: the hall (lamp) leads north to the library, east to the kitchen and south to the garden;
//!   a trapdoor leads down from the kitchen to the cellar, which is dark. A locked chest in the
//!   cellar holds the treasure; the key lies in the kitchen, the library or the garden.
//! * Goal: unlock the chest with the key (you need light to see it: carry the lamp), open it, take
//!   the treasure and carry it out into the garden.
//! * Actions are free text, as in a parser game: `north` (`n`, `go north`, also `south`, `east`,
//!   `west`, `up`, `down`), `take X` (`get X`), `drop X`, `open X`, `unlock X with Y`, `look`,
//!   `inventory` (`i`); articles are ignored and case does not matter. Every text in the action
//!   space is accepted: a command the parser does not know, or one that is impossible, costs a step
//!   and changes nothing.
//! * The observation is the response to the last command followed by the description of the room.
//! * Rewards, like Zork's points: 0.1 the first time the key is taken, 0.2 for unlocking the chest,
//!   0.3 the first time the treasure is taken, and 1.0 on reaching the garden with the treasure,
//!   which ends the episode. Episodes are truncated after 50 steps.
//! * Reset options: `{"key_room": "library"}` (`kitchen`, `library` or `garden`) places the key;
//!   without it the seed picks the room.
//! * [`valid_text_actions`](Environment::valid_text_actions) lists, like Jericho's
//!   `get_valid_actions`, the commands that would change the game state;
//!   [`state_key`](Environment::state_key) encodes the whole game state (not the last response).

use wasmgym_sdk::*;

/// The rooms where the key may be placed.
const KEY_ROOMS: [Room; 3] = [Room::Kitchen, Room::Library, Room::Garden];

/// A room of the house.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Room {
    Hall,
    Kitchen,
    Library,
    Garden,
    Cellar,
}

impl Room {
    fn name(self) -> &'static str {
        match self {
            Room::Hall => "Hall",
            Room::Kitchen => "Kitchen",
            Room::Library => "Library",
            Room::Garden => "Garden",
            Room::Cellar => "Cellar",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Room::Hall => "A dusty entrance hall. Doorways lead north, east and south.",
            Room::Kitchen => "A cold kitchen with a stone floor. An open trapdoor leads down; the hall is west.",
            Room::Library => "Shelves of mouldering books line the walls. The hall is south.",
            Room::Garden => "An overgrown garden under an open sky. The house is north.",
            Room::Cellar => "A damp cellar that smells of old wine. Stairs lead up.",
        }
    }

    /// Where `dir` leads from here, if anywhere.
    fn exit(self, dir: Dir) -> Option<Room> {
        match (self, dir) {
            (Room::Hall, Dir::North) => Some(Room::Library),
            (Room::Hall, Dir::East) => Some(Room::Kitchen),
            (Room::Hall, Dir::South) => Some(Room::Garden),
            (Room::Kitchen, Dir::West) | (Room::Library, Dir::South) | (Room::Garden, Dir::North) => Some(Room::Hall),
            (Room::Kitchen, Dir::Down) => Some(Room::Cellar),
            (Room::Cellar, Dir::Up) => Some(Room::Kitchen),
            _ => None,
        }
    }
}

/// A direction to move in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    North,
    South,
    East,
    West,
    Up,
    Down,
}

const DIRS: [Dir; 6] = [Dir::North, Dir::South, Dir::East, Dir::West, Dir::Up, Dir::Down];

impl Dir {
    fn name(self) -> &'static str {
        match self {
            Dir::North => "north",
            Dir::South => "south",
            Dir::East => "east",
            Dir::West => "west",
            Dir::Up => "up",
            Dir::Down => "down",
        }
    }

    fn parse(word: &str) -> Option<Dir> {
        DIRS.into_iter().find(|d| word == d.name() || word == &d.name()[..1])
    }
}

/// Something that can be carried; its index is its slot in [`TextAdventure::places`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Key = 0,
    Lamp = 1,
    Treasure = 2,
}

const ITEMS: [Item; 3] = [Item::Key, Item::Lamp, Item::Treasure];

impl Item {
    fn name(self) -> &'static str {
        match self {
            Item::Key => "key",
            Item::Lamp => "lamp",
            Item::Treasure => "treasure",
        }
    }

    fn long_name(self) -> &'static str {
        match self {
            Item::Key => "a brass key",
            Item::Lamp => "a lamp",
            Item::Treasure => "a golden treasure",
        }
    }
}

/// Where an item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    In(Room),
    Carried,
    InChest,
}

impl Place {
    fn byte(self) -> u8 {
        match self {
            Place::In(room) => room as u8,
            Place::Carried => 10,
            Place::InChest => 11,
        }
    }
}

/// What a command may name: an item or the chest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Noun {
    Item(Item),
    Chest,
}

impl Noun {
    fn parse(word: &str) -> Option<Noun> {
        match word {
            "chest" | "box" => Some(Noun::Chest),
            "lantern" => Some(Noun::Item(Item::Lamp)),
            "gold" => Some(Noun::Item(Item::Treasure)),
            _ => ITEMS.into_iter().find(|i| i.name() == word).map(Noun::Item),
        }
    }
}

/// A command the parser understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Look,
    Inventory,
    Go(Dir),
    Take(Noun),
    Drop(Noun),
    Open(Noun),
    Unlock(Noun, Noun),
}

impl Command {
    /// Parses a player's text; `None` if the parser does not understand it.
    fn parse(text: &str) -> Option<Command> {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower.split_whitespace().filter(|w| !matches!(*w, "the" | "a" | "an")).collect();
        Some(match words[..] {
            ["look" | "l"] => Command::Look,
            ["inventory" | "inv" | "i"] => Command::Inventory,
            [dir] | ["go" | "walk", dir] => Command::Go(Dir::parse(dir)?),
            ["take" | "get", noun] | ["pick", "up", noun] | ["pick", noun, "up"] => Command::Take(Noun::parse(noun)?),
            ["drop", noun] => Command::Drop(Noun::parse(noun)?),
            ["open", noun] => Command::Open(Noun::parse(noun)?),
            ["unlock", noun, "with", tool] => Command::Unlock(Noun::parse(noun)?, Noun::parse(tool)?),
            _ => return None,
        })
    }
}

/// The game: where the player and the items are, the chest, and which points were scored.
#[derive(Clone, Debug)]
pub struct TextAdventure {
    room: Room,
    /// Where each item is, indexed by `Item as usize`.
    places: [Place; 3],
    chest_locked: bool,
    chest_open: bool,
    key_found: bool,
    treasure_found: bool,
    /// The response to the last command (not part of the game state).
    message: String,
}

impl TextAdventure {
    fn place(&self, item: Item) -> Place {
        self.places[item as usize]
    }

    /// The room is lit: it is not dark, or the lamp is carried or lies here.
    fn lit(&self) -> bool {
        self.room != Room::Cellar || matches!(self.place(Item::Lamp), Place::Carried | Place::In(Room::Cellar))
    }

    /// The chest is here and can be seen.
    fn chest_here(&self) -> bool {
        self.room == Room::Cellar && self.lit()
    }

    /// The item is here (not carried) and can be seen.
    fn visible(&self, item: Item) -> bool {
        self.lit()
            && match self.place(item) {
                Place::In(room) => room == self.room,
                Place::InChest => self.chest_here() && self.chest_open,
                Place::Carried => false,
            }
    }

    fn carried(&self) -> Vec<Item> {
        ITEMS.into_iter().filter(|&i| self.place(i) == Place::Carried).collect()
    }

    /// The room as the player sees it.
    fn view(&self) -> String {
        if !self.lit() {
            return "It is pitch dark. You are likely to be eaten by a grue.".into();
        }
        let mut text = format!("{}\n{}", self.room.name(), self.room.description());
        if self.room == Room::Cellar {
            text += match (self.chest_locked, self.chest_open) {
                (true, _) => "\nA heavy wooden chest stands here. It is locked.",
                (false, false) => "\nA heavy wooden chest stands here. It is closed.",
                (false, true) => "\nA heavy wooden chest stands here, open.",
            };
        }
        for item in ITEMS.into_iter().filter(|&i| self.visible(i)) {
            let where_ = if self.place(item) == Place::InChest { "in the chest" } else { "here" };
            text += &format!("\nThere is {} {where_}.", item.long_name());
        }
        text
    }

    /// Carries out a command: the response and the reward. Changes nothing if the command fails.
    fn act(&mut self, command: Option<Command>) -> (String, f64) {
        let Some(command) = command else { return ("I don't understand that.".into(), 0.0) };
        let dark = "It's too dark to see.";
        let answer = |text: &str| (text.to_string(), 0.0);
        match command {
            Command::Look => answer(""),
            Command::Inventory => match self.carried()[..] {
                [] => answer("You are empty-handed."),
                ref items => {
                    let names: Vec<&str> = items.iter().map(|i| i.long_name()).collect();
                    answer(&format!("You are carrying: {}.", names.join(", ")))
                }
            },
            Command::Go(dir) => match self.room.exit(dir) {
                Some(room) => {
                    self.room = room;
                    answer("")
                }
                None => answer("You can't go that way."),
            },
            Command::Take(Noun::Item(item)) if self.place(item) == Place::Carried => answer("You already have that."),
            Command::Take(Noun::Item(item)) if self.visible(item) => {
                self.places[item as usize] = Place::Carried;
                let reward = match item {
                    Item::Key if !self.key_found => 0.1,
                    Item::Treasure if !self.treasure_found => 0.3,
                    _ => 0.0,
                };
                self.key_found |= item == Item::Key;
                self.treasure_found |= item == Item::Treasure;
                ("Taken.".into(), reward)
            }
            Command::Take(Noun::Chest) if self.chest_here() => answer("The chest is far too heavy."),
            Command::Take(_) | Command::Open(_) | Command::Unlock(..) if !self.lit() => answer(dark),
            Command::Take(_) => answer("You don't see that here."),
            Command::Drop(Noun::Item(item)) if self.place(item) == Place::Carried => {
                self.places[item as usize] = Place::In(self.room);
                answer("Dropped.")
            }
            Command::Drop(_) => answer("You aren't carrying that."),
            Command::Open(Noun::Chest) if self.chest_here() => {
                if self.chest_locked {
                    answer("The chest is locked.")
                } else if self.chest_open {
                    answer("It's already open.")
                } else {
                    self.chest_open = true;
                    let inside = self.place(Item::Treasure) == Place::InChest;
                    answer(if inside { "You open the chest. A treasure glitters inside!" } else { "Opened." })
                }
            }
            Command::Unlock(Noun::Chest, tool) if self.chest_here() => {
                if !self.chest_locked {
                    answer("It isn't locked.")
                } else if tool != Noun::Item(Item::Key) {
                    answer("That doesn't fit the lock.")
                } else if self.place(Item::Key) != Place::Carried {
                    answer("You don't have the key.")
                } else {
                    self.chest_locked = false;
                    ("The key turns with a click. The chest is unlocked.".into(), 0.2)
                }
            }
            Command::Open(Noun::Chest) | Command::Unlock(Noun::Chest, _) => answer("You don't see that here."),
            Command::Open(_) | Command::Unlock(..) => answer("You can't do that."),
        }
    }

    /// The game is won: the player stands in the garden with the treasure.
    fn won(&self) -> bool {
        self.room == Room::Garden && self.place(Item::Treasure) == Place::Carried
    }

    /// Plays one command: every text is accepted, and only a command that succeeds changes the state.
    fn advance(&mut self, text: &str) -> Transition {
        let (message, reward) = self.act(Command::parse(text));
        if self.won() {
            self.message = "You carry the treasure out into the sunlight. You have won!".into();
            return Transition::reward(1.0).terminal();
        }
        self.message = message;
        Transition::reward(reward)
    }

    /// The key's room from the reset options, `None` if they do not set it.
    fn key_room_from(options: &Options) -> Result<Option<Room>, EnvError> {
        const EXPECTED: &str =
            r#"pass {"key_room": "kitchen"} ("kitchen", "library" or "garden"), or no options to let the seed choose"#;
        let map = match options {
            Options::Null => return Ok(None),
            Options::Object(map) => map,
            other => {
                return Err(EnvError::caller(format!("reset options must be a JSON object, got {other}: {EXPECTED}")));
            }
        };
        if let Some(key) = map.keys().find(|k| *k != "key_room") {
            return Err(EnvError::caller(format!("unknown reset option {key:?}: {EXPECTED}")));
        }
        let Some(value) = map.get("key_room") else { return Ok(None) };
        let room = KEY_ROOMS.into_iter().find(|r| value.as_str() == Some(&r.name().to_lowercase()));
        match room {
            Some(room) => Ok(Some(room)),
            None => Err(EnvError::caller(format!("reset option \"key_room\" is {value}: {EXPECTED}"))),
        }
    }
}

impl Environment for TextAdventure {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "text_adventure".into(),
            version: 1,
            players: 1,
            observation_space: Space::Text { max_length: 1024, charset: None },
            action_space: Space::Text { max_length: 64, charset: None },
            reward_range: (0.0, 1.0),
            max_episode_steps: Some(50),
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(rng: &mut Rng, options: &Options) -> Result<Self, EnvError> {
        let key_room = match Self::key_room_from(options)? {
            Some(room) => room,
            None => KEY_ROOMS[rng.below(KEY_ROOMS.len() as u64) as usize],
        };
        Ok(TextAdventure {
            room: Room::Hall,
            places: [Place::In(key_room), Place::In(Room::Hall), Place::InChest],
            chest_locked: true,
            chest_open: false,
            key_found: false,
            treasure_found: false,
            message: "Somewhere in this old house a treasure lies locked away. Bring it out into the garden.".into(),
        })
    }

    fn observation(&self) -> Observation {
        let view = self.view();
        Observation::Text(if self.message.is_empty() { view } else { format!("{}\n\n{view}", self.message) })
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        Ok(self.advance(action.text()))
    }

    /// One line of state: room, inventory, the key's place and the chest.
    fn render(&self) -> String {
        let carried: Vec<&str> = self.carried().iter().map(|i| i.name()).collect();
        let key = match self.place(Item::Key) {
            Place::In(room) => room.name(),
            Place::Carried => "carried",
            Place::InChest => "chest",
        };
        let lock = if self.chest_locked { "locked" } else { "unlocked" };
        let open = if self.chest_open { "open" } else { "closed" };
        format!("{} | carrying: {} | key: {key} | chest: {lock}, {open}", self.room.name(), carried.join(", "))
    }

    fn valid_text_actions(&self) -> Vec<String> {
        let moves = DIRS.into_iter().map(|d| d.name().to_string());
        let takes = ITEMS.into_iter().map(|i| format!("take {}", i.name()));
        let drops = ITEMS.into_iter().map(|i| format!("drop {}", i.name()));
        let chest = ["unlock chest with key".to_string(), "open chest".to_string()];
        let key = self.state_key();
        moves
            .chain(takes)
            .chain(drops)
            .chain(chest)
            .filter(|command| {
                let mut next = self.clone();
                next.act(Command::parse(command));
                next.state_key() != key
            })
            .collect()
    }

    /// Room, the place of each item, then the chest's lock and lid and the points already scored.
    fn state_key(&self) -> Option<Vec<u8>> {
        let mut key = vec![self.room as u8];
        key.extend(self.places.iter().map(|p| p.byte()));
        key.extend([self.chest_locked, self.chest_open, self.key_found, self.treasure_found].map(u8::from));
        Some(key)
    }
}

export_env!(TextAdventure);

#[cfg(test)]
mod tests {
    use super::*;

    fn started(key_room: &str) -> Runner<TextAdventure> {
        let mut runner = Runner::<TextAdventure>::new();
        runner.reset(None, &format!(r#"{{"key_room": "{key_room}"}}"#)).unwrap();
        runner
    }

    fn key(runner: &Runner<TextAdventure>) -> Option<Vec<u8>> {
        runner.env().unwrap().state_key()
    }

    /// A text observation (encoded as its UTF-8 bytes).
    fn text(t: &StepResult) -> &str {
        std::str::from_utf8(&t.observation).unwrap()
    }

    #[test]
    fn walkthrough_reaches_the_goal_with_zork_points() {
        let mut runner = started("library");
        let walkthrough = [
            ("north", 0.0, "Library"),
            ("Take the key", 0.1, "Taken."),
            ("s", 0.0, "Hall"),
            ("get lamp", 0.0, "Taken."),
            ("go east", 0.0, "trapdoor"),
            ("down", 0.0, "chest stands here. It is locked."),
            ("unlock chest with key", 0.2, "unlocked"),
            ("open chest", 0.0, "There is a golden treasure in the chest."),
            ("take treasure", 0.3, "Taken."),
            ("up", 0.0, "Kitchen"),
            ("west", 0.0, "Hall"),
        ];
        for (command, reward, seen) in walkthrough {
            let t = runner.step(&Action::Text(command.into())).unwrap();
            assert_eq!((t.rewards[0], t.terminated), (reward, false), "{command}");
            assert!(text(&t).contains(seen), "{command}: {}", text(&t));
        }
        let t = runner.step(&Action::Text("south".into())).unwrap();
        assert_eq!((t.rewards[0], t.terminated), (1.0, true));
        assert!(text(&t).contains("You have won!"), "{}", text(&t));
    }

    #[test]
    fn points_are_scored_once() {
        let mut runner = started("garden");
        for command in ["south", "take key"] {
            runner.step(&Action::Text(command.into())).unwrap();
        }
        for command in ["drop key", "take key"] {
            assert_eq!(runner.step(&Action::Text(command.into())).unwrap().rewards, vec![0.0], "{command}");
        }
    }

    #[test]
    fn the_cellar_is_dark_without_the_lamp() {
        let mut runner = started("kitchen");
        for command in ["east", "take key", "down"] {
            runner.step(&Action::Text(command.into())).unwrap();
        }
        let before = key(&runner);
        let t = runner.step(&Action::Text("unlock chest with key".into())).unwrap();
        assert!(text(&t).starts_with("It's too dark to see.\n\nIt is pitch dark."), "{}", text(&t));
        assert_eq!((t.rewards[0], key(&runner)), (0.0, before));
        assert_eq!(runner.env().unwrap().valid_text_actions(), ["up", "drop key"]);
    }

    #[test]
    fn unknown_and_impossible_commands_change_nothing() {
        let mut runner = started("kitchen");
        let before = (key(&runner), runner.render().unwrap());
        for (command, answer) in [
            ("xyzzy", "I don't understand that."),
            ("", "I don't understand that."),
            ("take sword", "I don't understand that."),
            ("west", "You can't go that way."),
            ("take key", "You don't see that here."),
            ("drop lamp", "You aren't carrying that."),
            ("open chest", "You don't see that here."),
            ("open lamp", "You can't do that."),
            ("look", "Hall"),
            ("inventory", "You are empty-handed."),
        ] {
            let t = runner.step(&Action::Text(command.into())).unwrap();
            assert!(text(&t).starts_with(answer), "{command:?}: {}", text(&t));
            assert_eq!((t.rewards[0], t.terminated), (0.0, false), "{command:?}");
            assert_eq!((key(&runner), runner.render().unwrap()), before, "{command:?}");
        }
        // Text beyond the action space is refused by the SDK.
        let err = runner.step(&Action::Text("n".repeat(65))).unwrap_err();
        assert_eq!(format!("{:?}", err.status), "IllegalAction", "{err:?}");
    }

    #[test]
    fn every_valid_action_changes_the_state_and_the_goal_is_reachable() {
        // Every state reachable through valid actions, from each key room.
        let spec = TextAdventure::spec();
        let mut won = 0;
        for room in KEY_ROOMS {
            let mut runner = Runner::<TextAdventure>::new();
            runner.reset(None, &format!(r#"{{"key_room": "{}"}}"#, room.name().to_lowercase())).unwrap();
            let mut frontier = vec![runner.env().unwrap().clone()];
            let mut seen = vec![frontier[0].state_key()];
            while let Some(state) = frontier.pop() {
                let actions = state.valid_text_actions();
                assert!(!actions.is_empty(), "{}", state.render());
                for command in ["look", "inventory", "jump", "open key", "take chest", "unlock chest with lamp"] {
                    let mut next = state.clone();
                    next.act(Command::parse(command));
                    assert_eq!(next.state_key(), state.state_key(), "{command} in {}", state.render());
                    next.observation().check_in(&spec.observation_space).unwrap();
                }
                for action in actions {
                    let mut next = state.clone();
                    let t = next.advance(&action);
                    assert_ne!(next.state_key(), state.state_key(), "{action} in {}", state.render());
                    next.observation().check_in(&spec.observation_space).unwrap();
                    won += t.terminated as u32;
                    if !t.terminated && !seen.contains(&next.state_key()) {
                        seen.push(next.state_key());
                        frontier.push(next);
                    }
                }
            }
        }
        assert!(won > 0);
    }

    #[test]
    fn seeds_place_the_key_differently() {
        let key_room = |seed| {
            let mut runner = Runner::<TextAdventure>::new();
            runner.reset(Some(seed), "").unwrap();
            runner.env().unwrap().place(Item::Key)
        };
        assert_eq!(key_room(5), key_room(5));
        let rooms: Vec<Place> = (0..30).map(key_room).collect();
        for room in KEY_ROOMS {
            assert!(rooms.contains(&Place::In(room)), "{room:?} never chosen: {rooms:?}");
        }
    }

    #[test]
    fn bad_options_are_refused() {
        for options in [r#"{"key_room": "cellar"}"#, r#"{"key_room": 1}"#, r#"{"key": "garden"}"#, "[1]"] {
            let err = Runner::<TextAdventure>::new().reset(None, options).unwrap_err();
            assert_eq!(format!("{:?}", err.status), "BadRequest", "{options}: {err:?}");
            assert!(err.message.contains(r#""key_room""#), "{options}: {err:?}");
        }
    }
}
