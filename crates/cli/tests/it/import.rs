//! `regain customer import`: bad rows are reported by line and field, good rows are stored,
//! and the exit code says which happened.

use crate::admin::with_tenant;

const CSV: &str = "\
external_id,username,account_number,full_name,email,email_verified,phone,phone_verified,status,privileged,vip,totp,recovery_codes_remaining,password
E1,alice,A-1,Alice Ávila,alice@example.com,true,(201) 555-0111,yes,,false,no,1,3,
E2,bob,A-2,Bob Brown,bob@example.com;bob@work.example.com,1,,,locked,,,,,
E3,carol,A-3,Carol Chen,carol@example.com,,+44 7400 123456,true,active,yes,yes,no,0,
E4,dave,A-4,Dave Díaz,not-an-email,true,,,,,,,,
E5,erin,A-5,Erin Evans,erin@example.com,,201-555-0112,,,,,,,a directory password
E6,frank,A-6,Frank Fox,frank@example.com,,12,,,,,,,
E7,alice,A-7,Alice Again,alice2@example.com,,,,,,,,,
E8,zoe,A-8,\"Müller, Zoë\",zoe@example.com,no,201-555-0113;201-555-0114,0,,,,,,
";

#[test]
fn a_csv_import_keeps_the_good_rows_and_reports_the_bad_ones() {
    let sandbox = with_tenant();
    let file = sandbox.file("customers.csv", CSV);
    let report = sandbox.path().join("report.jsonl");
    let run = sandbox
        .run(&["customer", "import", "--tenant", "acme", file.to_str().unwrap(), "--report", report.to_str().unwrap()])
        .expect_code(2);
    assert!(run.stdout().contains("5 imported, 3 failed"), "{}", run.stdout());
    let err = run.stderr();
    for expected in [
        "line 5: email: is not a valid email address",
        "line 7: phone: is not a",
        "line 8: username: is already in use",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let failures: Vec<serde_json::Value> =
        std::fs::read_to_string(&report).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let lines: Vec<(i64, &str)> =
        failures.iter().map(|f| (f["line"].as_i64().unwrap(), f["field"].as_str().unwrap())).collect();
    assert_eq!(lines, [(5, "email"), (7, "phone"), (8, "username")]);
    assert!(failures.iter().all(|f| !f["message"].as_str().unwrap().is_empty()));

    // The good rows are really there: importing one of them again is a duplicate.
    let again = sandbox.file("again.jsonl", "{\"username\":\"zoe\",\"full_name\":\"Zoë\"}\n");
    let err = sandbox.run(&["customer", "import", "--tenant", "acme", again.to_str().unwrap()]).expect_code(2).stderr();
    assert!(err.contains("line 1: username: is already in use"), "{err}");
}

#[test]
fn a_jsonl_import_goes_through_the_same_validation() {
    let sandbox = with_tenant();
    let good = sandbox.file(
        "good.jsonl",
        concat!(
            "{\"username\":\"gina\",\"full_name\":\"Gina Gómez\",\"emails\":[{\"address\":\"gina@example.com\",\"verified\":true}],\"phones\":[{\"number\":\"201-555-0150\"}]}\n",
            "\n",
            "{\"username\":\"hal\",\"full_name\":\"Hal\",\"status\":\"frozen\",\"factors\":{\"totp\":true,\"recovery_codes_remaining\":5}}\n",
        ),
    );
    let run = sandbox.run(&["customer", "import", "--tenant", "acme", good.to_str().unwrap()]).expect_code(0);
    assert!(run.stdout().contains("2 imported, 0 failed"), "{}", run.stdout());

    let bad = sandbox.file(
        "bad.data",
        concat!(
            "{\"username\":\"ivy\",\"full_name\":\"Ivy\",\"status\":\"asleep\"}\n",
            "{\"username\":\"jon\",\"full_name\":\"Jon\",\"bogus\":1}\n",
            "{\"username\":\"gina\",\"full_name\":\"Gina\"}\n",
            "{\"username\":\"kim\",\"full_name\":\"Kim\",\"emails\":[{\"address\":\"k@example.com\"},{\"address\":\"nope\"}]}\n",
            "{\"username\":\"lee\",\"full_name\":\"Lee\"}\n",
        ),
    );
    let run = sandbox
        .run(&["customer", "import", "--tenant", "acme", bad.to_str().unwrap(), "--format", "jsonl"])
        .expect_code(2);
    assert!(run.stdout().contains("1 imported, 4 failed"), "{}", run.stdout());
    let err = run.stderr();
    for expected in [
        "line 1: status: must be one of",
        "line 2: json: unknown field `bogus`",
        "line 3: username: is already in use",
        "line 4: emails/1: is not a valid email address",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn what_cannot_be_imported_at_all_is_fatal() {
    let sandbox = with_tenant();
    let file = sandbox.file("c.csv", "username,full_name\nann,Ann\n");
    let err = sandbox.run(&["customer", "import", "--tenant", "nope", file.to_str().unwrap()]).expect_code(1).stderr();
    assert!(err.contains("no tenant has the slug \"nope\""), "{err}");

    let err = sandbox.run(&["customer", "import", "--tenant", "acme", "missing.csv"]).expect_code(1).stderr();
    assert!(err.contains("missing.csv"), "{err}");

    let odd = sandbox.file("odd.csv", "username,full_name,shoe_size\nann,Ann,9\n");
    let err = sandbox.run(&["customer", "import", "--tenant", "acme", odd.to_str().unwrap()]).expect_code(1).stderr();
    assert!(err.contains("unknown column \"shoe_size\""), "{err}");

    let unknown = sandbox.file("c.txt", "");
    let err =
        sandbox.run(&["customer", "import", "--tenant", "acme", unknown.to_str().unwrap()]).expect_code(1).stderr();
    assert!(err.contains("--format"), "{err}");

    // Nothing was imported by any of these.
    let run = sandbox.run(&["customer", "import", "--tenant", "acme", file.to_str().unwrap()]).expect_code(0);
    assert!(run.stdout().contains("1 imported, 0 failed"), "{}", run.stdout());
}
