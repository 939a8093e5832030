use notebox::render_note;
use notebox::wrap::wrap;

fn assert_rectangular(out: &str, width: usize) {
    for line in out.lines() {
        assert_eq!(line.chars().count(), width + 4, "ragged line {line:?} in\n{out}");
    }
}

#[test]
fn ascii_note() {
    let out = render_note("Todo", "buy milk and eggs then call the plumber", 16);
    assert_eq!(
        out,
        "+------------------+\n\
         | Todo             |\n\
         +------------------+\n\
         | buy milk and     |\n\
         | eggs then call   |\n\
         | the plumber      |\n\
         +------------------+\n"
    );
}

#[test]
fn german_note_has_a_straight_border() {
    let out = render_note("Grüße", "Viele Grüße aus Zürich, schöne Woche!", 16);
    assert_eq!(
        out,
        "+------------------+\n\
         | Grüße            |\n\
         +------------------+\n\
         | Viele Grüße aus  |\n\
         | Zürich, schöne   |\n\
         | Woche!           |\n\
         +------------------+\n"
    );
}

#[test]
fn line_exactly_as_wide_as_the_box() {
    assert_eq!(wrap("äöü äöü äöü äöü", 7), vec!["äöü äöü", "äöü äöü"]);
    assert_eq!(wrap("abc abc abc abc", 7), vec!["abc abc", "abc abc"]);
}

#[test]
fn long_words_are_split_on_characters() {
    assert_eq!(
        wrap("Donaudampfschifffahrtsgesellschaftskapitän", 16),
        vec!["Donaudampfschiff", "fahrtsgesellscha", "ftskapitän"]
    );
    assert_eq!(wrap("ééééé ab", 2), vec!["éé", "éé", "é", "ab"]);
    assert_eq!(wrap("ab ééé", 3), vec!["ab", "ééé"]);
}

#[test]
fn long_title_is_clipped_on_characters() {
    let out = render_note("Überweisungsbestätigung", "ok", 10);
    assert!(out.contains("| Überweisun |\n"), "{out}");
    assert_rectangular(&out, 10);
}

#[test]
fn every_width_gives_a_rectangle() {
    let body = "Crème brûlée für 4 Personen: Sahne, Eigelb, Zucker — dann karamellisieren. ½ Vanilleschote ☕";
    for width in 1..40 {
        let out = render_note("Rezept · Dessert", body, width);
        assert_rectangular(&out, width);
        let words: Vec<String> = wrap(body, width).join(" ").split_whitespace().map(String::from).collect();
        if width >= 16 {
            let original: Vec<String> = body.split_whitespace().map(String::from).collect();
            assert_eq!(words, original, "width {width}");
        }
    }
}

#[test]
fn empty_body() {
    assert_eq!(wrap("   ", 5), Vec::<String>::new());
    let out = render_note("", "", 3);
    assert_eq!(out, "+-----+\n|     |\n+-----+\n+-----+\n");
}
