use lexpath::{is_within, join, normalize, relative_to};

#[test]
fn normalize_simple() {
    assert_eq!(normalize("a/b/c"), "a/b/c");
    assert_eq!(normalize("a//b///c/"), "a/b/c");
    assert_eq!(normalize("./a/./b/."), "a/b");
    assert_eq!(normalize("/a/b/../c"), "/a/c");
    assert_eq!(normalize("/"), "/");
    assert_eq!(normalize("///"), "/");
}

#[test]
fn normalize_empty_results() {
    assert_eq!(normalize(""), ".");
    assert_eq!(normalize("."), ".");
    assert_eq!(normalize("./"), ".");
    assert_eq!(normalize("a/.."), ".");
    assert_eq!(normalize("a/b/../.."), ".");
    assert_eq!(normalize("/a/.."), "/");
}

#[test]
fn normalize_keeps_leading_dotdot_for_relative_paths() {
    assert_eq!(normalize(".."), "..");
    assert_eq!(normalize("../a"), "../a");
    assert_eq!(normalize("../../a/b"), "../../a/b");
    assert_eq!(normalize("a/../.."), "..");
    assert_eq!(normalize("a/../../b/../c"), "../c");
    assert_eq!(normalize("./../x/"), "../x");
    assert_eq!(normalize("../a/../.."), "../..");
}

#[test]
fn normalize_dotdot_at_root() {
    assert_eq!(normalize("/.."), "/");
    assert_eq!(normalize("/../a"), "/a");
    assert_eq!(normalize("/a/../../b"), "/b");
    assert_eq!(normalize("//../..//x"), "/x");
}

#[test]
fn names_that_look_special_are_not() {
    assert_eq!(normalize("a/.../b"), "a/.../b");
    assert_eq!(normalize("a/..b/c"), "a/..b/c");
    assert_eq!(normalize("a/.b/../c"), "a/c");
}

#[test]
fn join_paths() {
    assert_eq!(join("/srv/data", "x/y"), "/srv/data/x/y");
    assert_eq!(join("/srv/data", "../logs"), "/srv/logs");
    assert_eq!(join("/srv/data", "/etc/hosts"), "/etc/hosts");
    assert_eq!(join("a", "../../b"), "../b");
    assert_eq!(join("", "x"), "x");
    assert_eq!(join("a", ""), "a");
}

#[test]
fn relative_paths() {
    assert_eq!(relative_to("/a/b/c", "/a").as_deref(), Some("b/c"));
    assert_eq!(relative_to("/a/b/c", "/a/d").as_deref(), Some("../b/c"));
    assert_eq!(relative_to("/a", "/a/b/c").as_deref(), Some("../.."));
    assert_eq!(relative_to("/a/b", "/a/b/").as_deref(), Some("."));
    assert_eq!(relative_to("/x/y", "/").as_deref(), Some("x/y"));
    assert_eq!(relative_to("/", "/x/y").as_deref(), Some("../.."));
    assert_eq!(relative_to("/a/bc", "/a/b").as_deref(), Some("../bc"));
    assert_eq!(relative_to("/a/b/../c", "/a/./c/d").as_deref(), Some(".."));
    assert_eq!(relative_to("a/b", "/a"), None);
    assert_eq!(relative_to("/a", "a"), None);
}

#[test]
fn relative_then_join_round_trips() {
    let dirs = ["/", "/a", "/a/b", "/a/bc", "/a/b/c", "/x", "/x/a/b"];
    for t in dirs {
        for b in dirs {
            let rel = relative_to(t, b).unwrap();
            assert_eq!(join(b, &rel), normalize(t), "target {t} base {b} rel {rel}");
        }
    }
}

#[test]
fn containment() {
    assert!(is_within("/srv/up", "a/b.txt"));
    assert!(is_within("/srv/up", "a/../b.txt"));
    assert!(is_within("/srv/up", "."));
    assert!(!is_within("/srv/up", "../up2/x"));
    assert!(!is_within("/srv/up", "../../etc/passwd"));
    assert!(!is_within("/srv/up", "/etc/passwd"));
    assert!(!is_within("/srv/up", "../upload"));
    assert!(is_within("/", "anything/at/all"));
    assert!(is_within("/srv/up/", "x"));
}
