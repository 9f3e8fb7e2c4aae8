//! `voxbridge list …`: distribution lists in the store, and the configuration's
//! `[[menu.list]]` imported into it once.

mod common;

use common::Server;

#[test]
fn lists_are_added_shown_changed_and_removed_with_clear_errors() {
    let server = Server::configure("");
    for mb in ["1001", "1002", "1003"] {
        server.cli_ok(&["mailbox", "add", mb, "--pin", "1234"]);
    }
    assert!(server.cli_ok(&["list", "show"]).contains("no distribution lists"));
    assert!(server.cli_ok(&["list", "add", "800", "--name", "sales", "1002", "1001"]).contains("2 member(s)"));
    assert_eq!(server.cli_ok(&["list", "show"]).trim(), "800 (sales): 1001 1002");
    let one: serde_json::Value = serde_json::from_str(&server.cli_ok(&["list", "show", "800", "--json"])).unwrap();
    assert_eq!(one, serde_json::json!({ "number": "800", "name": "sales", "members": ["1001", "1002"] }));
    let members = server.cli_ok(&["list", "members", "800", "--add", "1003", "--remove", "1001", "--json"]);
    assert_eq!(members.trim(), r#"["1002","1003"]"#);

    // Refused, each with what is wrong and nothing written.
    let refused = |args: &[&str], why: &str| {
        let out = server.cli(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success() && err.contains(why), "{args:?}: {err}");
    };
    refused(&["list", "add", "800", "1001"], "list 800 already exists");
    refused(&["list", "add", "1001", "1002"], "1001 is a mailbox");
    refused(&["list", "add", "801", "1001", "4711"], "no mailbox 4711");
    refused(&["list", "add", "8x1", "1001"], "1 to 32 digits");
    refused(&["list", "members", "800", "--remove", "1001"], "1001 is not a member of list 800");
    refused(&["list", "members", "800", "--add", "1001", "--add", "4711"], "no mailbox 4711");
    refused(&["list", "show", "801"], "no list 801");
    refused(&["list", "remove", "801"], "no list 801");
    refused(&["mailbox", "add", "800", "--pin", "1234"], "800 is a distribution list");
    assert_eq!(server.cli_ok(&["list", "members", "800"]).trim(), "1002\n1003", "a refused change changes nothing");
    assert!(!server.cli_ok(&["list", "show"]).contains("801"));

    // A removed mailbox leaves the list; a removed list is gone.
    server.cli_ok(&["mailbox", "remove", "1003", "--yes"]);
    assert_eq!(server.cli_ok(&["list", "members", "800"]).trim(), "1002");
    assert!(server.cli_ok(&["list", "remove", "800"]).contains("list 800 removed"));
    assert!(server.cli_ok(&["list", "show"]).contains("no distribution lists"));
}

#[test]
fn the_configurations_lists_are_imported_once_and_stay_removed() {
    let mut server = Server::configure(
        "[[menu.list]]\nnumber = \"800\"\nmembers = [\"1001\", \"1002\"]\n\n[[menu.list]]\nnumber = \"1003\"\nmembers = [\"1001\"]\n",
    );
    server.cli_ok(&["mailbox", "add", "1001", "--pin", "1234"]);
    // The first list command imports them; 1003 is no mailbox yet, so it is a list.
    assert_eq!(server.cli_ok(&["list", "show"]).trim(), "1003: 1001\n800: 1001 1002");
    server.cli_ok(&["list", "remove", "1003"]);
    server.cli_ok(&["mailbox", "add", "1003", "--pin", "1234"]);
    // The server starting does not bring the removed list back, and says where the
    // lists are managed now.
    server.run();
    assert_eq!(server.cli_ok(&["list", "show"]).trim(), "800: 1001 1002");
    server.cli_ok(&["list", "members", "800", "--remove", "1002"]);
    server.stop();
    server.run();
    assert_eq!(server.cli_ok(&["list", "show"]).trim(), "800: 1001", "the store's list is the one in use");
    assert!(server.log().contains("[[menu.list]] names other members than the store's list"), "{}", server.log());
}
