//! Templates: parsing, rendering, and every built-in.

use std::collections::BTreeMap;

use regain_delivery::{builtin, builtin_placeholders, Channel, Template, TemplateError, BUILTIN_NAMES};

fn values(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
    pairs.iter().map(|&(k, v)| (k, v.to_owned())).collect()
}

#[test]
fn renders_subject_and_body() {
    let template =
        Template::parse("greeting", "Hi {{name}}", "Code: {{ code }}\n{{name}}, {{code}} again.", &["name", "code"])
            .unwrap();
    assert_eq!(template.name(), "greeting");
    assert_eq!(template.placeholders(), ["code", "name"]);
    let (subject, body) = template.render(&values(&[("name", "Ann"), ("code", "123456")])).unwrap();
    assert_eq!(subject, "Hi Ann");
    assert_eq!(body, "Code: 123456\nAnn, 123456 again.");
}

#[test]
fn values_are_plain_text_never_expanded_or_escaped() {
    let template = Template::parse("t", "{{a}}", "<p>{{a}}</p> {{b}}", &["a", "b"]).unwrap();
    let (subject, body) = template.render(&values(&[("a", "{{b}} & <b>\r\nBcc: x"), ("b", "B")])).unwrap();
    assert_eq!(body, "<p>{{b}} & <b>\r\nBcc: x</p> B");
    // The subject is one header line: line breaks in values become spaces.
    assert_eq!(subject, "{{b}} & <b> Bcc: x");
}

#[test]
fn lone_braces_are_text() {
    let template = Template::parse("t", "", "a { b } c }} d {x}", &[]).unwrap();
    assert_eq!(template.render(&BTreeMap::new()).unwrap().1, "a { b } c }} d {x}");
}

#[test]
fn parse_errors_name_template_part_and_position() {
    let check = |subject: &str, body: &str, expected: TemplateError| {
        let error = Template::parse("tenant:acme/verification_code", subject, body, &["code", "tenant"]).unwrap_err();
        assert_eq!(error, expected);
        assert!(error.to_string().contains("tenant:acme/verification_code"), "{error}");
    };
    let template = || "tenant:acme/verification_code".to_owned();
    check(
        "Code {{cdoe}}",
        "",
        TemplateError::UnknownPlaceholder {
            template: template(),
            part: "subject",
            line: 1,
            column: 6,
            name: "cdoe".into(),
            allowed: "code, tenant".into(),
        },
    );
    check(
        "ok",
        "Hello,\nyour {{tenant}} code is {{code}\nbye",
        TemplateError::Unclosed { template: template(), part: "body", line: 2, column: 25 },
    );
    check(
        "",
        "é {{}}",
        TemplateError::UnknownPlaceholder {
            template: template(),
            part: "body",
            line: 1,
            column: 3,
            name: String::new(),
            allowed: "code, tenant".into(),
        },
    );
    check("", "{{", TemplateError::Unclosed { template: template(), part: "body", line: 1, column: 1 });
}

#[test]
fn a_missing_value_is_an_error_naming_it() {
    let template = Template::parse("t", "{{a}}", "{{b}}", &["a", "b"]).unwrap();
    assert_eq!(
        template.render(&values(&[("a", "x")])),
        Err(TemplateError::MissingValue { template: "t".into(), name: "b".into() })
    );
    // Values the template does not use are fine.
    assert!(template.render(&values(&[("a", "x"), ("b", "y"), ("c", "z")])).is_ok());
}

fn sample(name: &str) -> BTreeMap<&'static str, String> {
    let all = [
        ("tenant", "ACME"),
        ("code", "493817"),
        ("minutes", "10"),
        ("purpose", "account recovery"),
        ("link", "https://help.acme.test/r/Xk2q9"),
        ("when", "2025-03-04 14:05 UTC"),
        ("remaining", "7"),
        ("until", "2025-03-05 14:05 UTC"),
        ("factor", "An authenticator app"),
        ("username", "wile.e"),
        ("what", "Your password was changed"),
        ("channel", "phone"),
        ("report_link", "https://help.acme.test/report/Qz81"),
        ("hours", "24"),
    ];
    let allowed = builtin_placeholders(name).unwrap();
    all.iter().filter(|(k, _)| allowed.contains(k)).map(|&(k, v)| (k, v.to_owned())).collect()
}

#[test]
fn every_builtin_parses_uses_all_its_placeholders_and_renders() {
    for &name in BUILTIN_NAMES {
        let mut allowed = builtin_placeholders(name).unwrap().to_vec();
        allowed.sort_unstable();
        for channel in [Channel::Email, Channel::Sms] {
            let template = builtin(name, channel).unwrap_or_else(|| panic!("{name} {channel:?}"));
            assert_eq!(template.placeholders(), allowed, "{name} {channel:?}");
            let values = sample(name);
            let (subject, body) = template.render(&values).unwrap();
            assert!(!subject.contains("{{") && !body.contains("{{"), "{name} {channel:?}");
            for value in values.values() {
                assert!(
                    subject.contains(value.as_str()) || body.contains(value.as_str()),
                    "{name} {channel:?}: {value}"
                );
            }
            assert!(body.contains("ACME"), "says who is asking: {name} {channel:?}");
            match channel {
                Channel::Email => {
                    assert!(!subject.is_empty() && !subject.contains('\n'), "{name}: {subject:?}");
                    assert!(body.ends_with('\n'), "{name}");
                }
                Channel::Sms => {
                    assert_eq!(subject, "", "{name}");
                    assert!(!body.contains('\n'), "one line: {name}: {body:?}");
                    assert!(body.chars().count() <= 160, "one segment: {name}: {} chars", body.chars().count());
                    assert!(body.is_ascii(), "GSM-7 friendly: {name}");
                }
            }
        }
    }
    assert!(builtin("no_such_template", Channel::Email).is_none());
    assert!(builtin_placeholders("no_such_template").is_none());
}

#[test]
fn the_sms_code_comes_first() {
    let (_, body) = builtin("verification_code", Channel::Sms).unwrap().render(&sample("verification_code")).unwrap();
    assert_eq!(
        body,
        "493817 is your ACME verification code for account recovery. It expires in 10 min. Didn't ask? Don't share it."
    );
}

#[test]
fn emails_say_what_to_do_if_it_was_not_you() {
    for &name in BUILTIN_NAMES {
        let (_, body) = builtin(name, Channel::Email).unwrap().render(&sample(name)).unwrap();
        assert!(body.contains("If you did not") || body.contains("If this was not you"), "{name}:\n{body}");
    }
    let (subject, body) =
        builtin("verification_code", Channel::Email).unwrap().render(&sample("verification_code")).unwrap();
    assert_eq!(subject, "Your ACME verification code");
    assert!(body.contains("\n    493817\n"), "{body}");
    assert!(body.contains("expires in 10 minutes"), "{body}");
}
