use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::note::{open, Checkpoint, NoteError, NoteSigner, NoteVerifier};
use crate::{empty_root, leaf_hash};

const ZERO_SEED_NAME: &str = "example.com/log";
/// Recorded from this implementation (Ed25519 is deterministic), so any change
/// to key ids, encodings or signing shows up here. The public key part is the
/// well-known Ed25519 key of the all-zero seed (3b6a27bc...59da29), the same one
/// Go's sumdb/note tests use as "EnochRoot+af0cfe78+ATtqJ7...".
const ZERO_SEED_VKEY: &str = "example.com/log+1dde4531+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const ZERO_SEED_BODY: &str = "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
const ZERO_SEED_NOTE: &str = "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n\
    \u{2014} example.com/log Hd5FMc1KDcGoIYPbXr1ANKbmaAILGDyth0JuVgg0X+FAvF2Py4ZhmjD6FFcc6Pyq3/4ymxm/wplDHimfNQh/7hpt1go=\n";

fn checkpoint() -> Checkpoint {
    Checkpoint { origin: "regain.example/audit".into(), size: 42, root: leaf_hash(b"x"), extensions: vec![] }
}

fn signer(name: &str, byte: u8) -> NoteSigner {
    NoteSigner::new(name, &[byte; 32]).unwrap()
}

fn verifier(signer: &NoteSigner) -> NoteVerifier {
    NoteVerifier::parse(&signer.verifier_key()).unwrap()
}

#[test]
fn sign_then_open_round_trips_a_checkpoint() {
    let (signer, seed) = NoteSigner::generate("regain.example/audit").unwrap();
    let again = NoteSigner::new("regain.example/audit", &seed).unwrap();
    assert_eq!(signer.verifier_key(), again.verifier_key());
    let body = checkpoint().body();
    let note = signer.sign(&body).unwrap();
    assert!(note.starts_with(&format!("{body}\n\u{2014} regain.example/audit ")), "{note}");
    assert!(note.ends_with('\n') && note.lines().count() == 5, "{note}");
    let opened = open(&note, &verifier(&signer)).unwrap();
    assert_eq!(opened, body);
    assert_eq!(Checkpoint::parse_body(&opened).unwrap(), checkpoint());
    assert_eq!(signer.verifier(), verifier(&signer));
}

#[test]
fn verifier_key_has_the_specified_format_and_key_id() {
    let signer = signer("example.com/log", 9);
    let vkey = signer.verifier_key();
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    assert_eq!(parts[0], "example.com/log");
    let typed = STANDARD.decode(parts[2]).unwrap();
    assert_eq!((typed.len(), typed[0]), (33, 0x01));
    let digest = Sha256::new().chain_update(b"example.com/log\n").chain_update(&typed).finalize();
    let id_hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(parts[1], id_hex);
    let v = NoteVerifier::parse(&vkey).unwrap();
    assert_eq!((v.name(), v.key_id().as_slice()), ("example.com/log", &digest[..4]));
    assert_eq!(signer.key_id(), v.key_id());
    assert_eq!(signer.name(), "example.com/log");
}

#[test]
fn known_answer_with_the_all_zero_seed() {
    let signer = NoteSigner::new(ZERO_SEED_NAME, &[0u8; 32]).unwrap();
    let vkey = signer.verifier_key();
    assert!(vkey.starts_with("example.com/log+"));
    let body = Checkpoint { origin: ZERO_SEED_NAME.into(), size: 0, root: empty_root(), extensions: vec![] }.body();
    assert_eq!(body, ZERO_SEED_BODY);
    let note = signer.sign(&body).unwrap();
    assert_eq!(vkey, ZERO_SEED_VKEY);
    assert_eq!(note, ZERO_SEED_NOTE);
    assert_eq!(open(ZERO_SEED_NOTE, &NoteVerifier::parse(ZERO_SEED_VKEY).unwrap()).unwrap(), body);
}

/// Cross-implementation check against the example of Go's golang.org/x/mod/sumdb/note
/// (its signer key is "PRIVATE+KEY+PeterNeumann+c74f20a3+" + base64(0x01 || seed)).
#[test]
fn matches_the_go_sumdb_note_example() {
    let private = STANDARD.decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap();
    let seed: [u8; 32] = private[1..].try_into().unwrap();
    let signer = NoteSigner::new("PeterNeumann", &seed).unwrap();
    assert_eq!(signer.verifier_key(), "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    let want = format!(
        "{text}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    );
    assert_eq!(signer.sign(text).unwrap(), want);
    assert_eq!(open(&want, &verifier(&signer)).unwrap(), text);
}

#[test]
fn any_flipped_bit_in_body_or_signature_is_rejected() {
    let signer = signer("regain.example/audit", 1);
    let v = verifier(&signer);
    let body = checkpoint().body();
    let note = signer.sign(&body).unwrap();
    // Every bit of the note's bytes, body, name and base64 alike.
    let bytes = note.as_bytes();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut bad = bytes.to_vec();
            bad[i] ^= 1 << bit;
            if let Ok(bad) = String::from_utf8(bad) {
                assert!(open(&bad, &v).is_err(), "byte {i} bit {bit}");
            }
        }
    }
    // Every bit of the decoded signature blob, re-encoded as valid base64.
    let line_start = body.len() + 1;
    let b64 = &note[line_start..].rsplit_once(' ').unwrap().1.trim_end();
    let blob = STANDARD.decode(b64).unwrap();
    assert_eq!(blob.len(), 68);
    for bit in 0..blob.len() * 8 {
        let mut bad = blob.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let forged = format!("{body}\n\u{2014} regain.example/audit {}\n", STANDARD.encode(&bad));
        let err = open(&forged, &v).unwrap_err();
        // A changed key id makes the line someone else's; otherwise the signature is bad.
        let expected_no_sig = bit < 32;
        assert_eq!(matches!(err, NoteError::NoValidSignature), expected_no_sig, "bit {bit}: {err}");
        assert_eq!(matches!(err, NoteError::BadSignature), !expected_no_sig, "bit {bit}: {err}");
    }
}

#[test]
fn another_key_is_not_accepted_but_cosignatures_are_ignored() {
    let ours = signer("regain.example/audit", 1);
    let same_name = signer("regain.example/audit", 2);
    let witness = signer("witness.example/w1", 3);
    let body = checkpoint().body();
    let v = verifier(&ours);
    for other in [&same_name, &witness] {
        assert!(matches!(open(&other.sign(&body).unwrap(), &v), Err(NoteError::NoValidSignature)));
    }
    // Our line plus a witness cosignature, in either order.
    let line = |s: &NoteSigner| s.sign(&body).unwrap()[body.len() + 1..].to_owned();
    for note in
        [format!("{body}\n{}{}", line(&witness), line(&ours)), format!("{body}\n{}{}", line(&ours), line(&witness))]
    {
        assert_eq!(open(&note, &v).unwrap(), body);
        assert_eq!(open(&note, &verifier(&witness)).unwrap(), body);
    }
    // A line by our key that does not verify poisons the note even next to a good one.
    let other_body = Checkpoint { size: 43, ..checkpoint() }.body();
    let forged_line = ours.sign(&other_body).unwrap()[other_body.len() + 1..].to_owned();
    let note = format!("{body}\n{}{}", line(&ours), forged_line);
    assert!(matches!(open(&note, &v), Err(NoteError::BadSignature)));
}

#[test]
fn malformed_notes_are_rejected() {
    let signer = signer("regain.example/audit", 1);
    let v = verifier(&signer);
    let body = checkpoint().body();
    let note = signer.sign(&body).unwrap();
    let sig_line = note[body.len() + 1..].to_owned();
    let (name_part, b64) = sig_line.trim_end().rsplit_once(' ').unwrap();
    let cases = [
        ("missing blank line", format!("{body}{sig_line}")),
        ("no final newline", note.trim_end().to_owned()),
        ("empty body", sig_line.clone()),
        ("empty body, blank line", format!("\n{sig_line}")),
        ("bad base64", format!("{body}\n{name_part} {}!\n", &b64[1..])),
        ("unpadded base64", format!("{body}\n{name_part} {}\n", b64.trim_end_matches('='))),
        ("two spaces before signature", format!("{body}\n{name_part}  {b64}\n")),
        ("two spaces after dash", format!("{body}\n\u{2014}  regain.example/audit {b64}\n")),
        ("trailing space", format!("{body}\n{name_part} {b64} \n")),
        ("hyphen instead of em dash", format!("{body}\n- regain.example/audit {b64}\n")),
        ("no signature", format!("{body}\n")),
        ("blank line after signature", format!("{note}\n")),
        ("carriage return", note.replace('\n', "\r\n")),
        ("short signature", format!("{body}\n{name_part} AAAAAA==\n")),
        ("name with plus", format!("{body}\n\u{2014} a+b {b64}\n")),
        ("em dash line in body", format!("{body}\u{2014} x\n\n{sig_line}")),
        ("too many signatures", format!("{body}\n{}", sig_line.repeat(101))),
    ];
    for (what, bad) in cases {
        let result = open(&bad, &v);
        assert!(matches!(result, Err(NoteError::Malformed(_))), "{what}: {result:?}");
    }
    // Repeating our own valid line is not an error below the limit.
    assert_eq!(open(&format!("{body}\n{}", sig_line.repeat(16)), &v).unwrap(), body);
}

#[test]
fn signing_refuses_bodies_that_could_not_be_opened() {
    let signer = signer("regain.example/audit", 1);
    for body in ["", "no newline", "a\n\u{2014} b\n", "\u{2014}\n", "tab\there\n", "cr\r\n"] {
        assert!(matches!(signer.sign(body), Err(NoteError::Malformed(_))), "{body:?}");
    }
    // Blank lines inside the body are allowed by the spec and survive a round trip.
    let body = "a\n\nb\n\n";
    assert_eq!(open(&signer.sign(body).unwrap(), &verifier(&signer)).unwrap(), body);
}

#[test]
fn key_names_and_verifier_keys_are_checked() {
    for name in ["", "a b", "a+b", "tab\tname", "nbsp\u{a0}name"] {
        assert!(matches!(NoteSigner::new(name, &[0; 32]), Err(NoteError::BadKey(_))), "{name:?}");
        assert!(matches!(NoteSigner::generate(name), Err(NoteError::BadKey(_))), "{name:?}");
    }
    let vkey = signer("example.com/log", 5).verifier_key();
    let (name, rest) = vkey.split_once('+').unwrap();
    let (id, key) = rest.split_once('+').unwrap();
    let typed = STANDARD.decode(key).unwrap();
    let with_type = |t: u8| {
        let mut k = typed.clone();
        k[0] = t;
        format!("{name}+{id}+{}", STANDARD.encode(k))
    };
    let cases = [
        String::new(),
        name.to_owned(),
        format!("{name}+{id}"),
        format!("{name}+{}+{key}", id.to_uppercase()),
        format!("{name}+00000000+{key}"),
        format!("{name}+{id}0+{key}"),
        format!("other.example+{id}+{key}"),
        format!("{name}+{id}+{}", &key[4..]),
        format!("{name}+{id}+{key}=="),
        format!("{name}+{id}+{}", STANDARD.encode(&typed[..32])),
        with_type(0x02),
        format!("+{id}+{key}"),
    ];
    for bad in cases {
        assert!(matches!(NoteVerifier::parse(&bad), Err(NoteError::BadKey(_))), "{bad:?}");
    }
}

#[test]
fn checkpoint_bodies_are_parsed_strictly() {
    let cp = checkpoint();
    let root = STANDARD.encode(cp.root);
    let with_ext = Checkpoint { extensions: vec!["ext 1".into(), "ext 2".into()], ..cp.clone() };
    assert_eq!(Checkpoint::parse_body(&with_ext.body()).unwrap(), with_ext);
    assert_eq!(with_ext.body(), format!("regain.example/audit\n42\n{root}\next 1\next 2\n"));
    let zero = format!("o\n0\n{root}\n");
    assert_eq!(Checkpoint::parse_body(&zero).unwrap().size, 0);
    let max = format!("o\n{}\n{root}\n", u64::MAX);
    assert_eq!(Checkpoint::parse_body(&max).unwrap().size, u64::MAX);
    let short_root = STANDARD.encode([1u8; 31]);
    let cases = [
        String::new(),
        format!("o\n42\n{root}"),
        "o\n42\n".to_owned(),
        format!("\n42\n{root}\n"),
        format!("o\n042\n{root}\n"),
        format!("o\n+42\n{root}\n"),
        format!("o\n-1\n{root}\n"),
        format!("o\n 42\n{root}\n"),
        format!("o\n18446744073709551616\n{root}\n"),
        format!("o\n\n{root}\n"),
        format!("o\n42\n{short_root}\n"),
        format!("o\n42\n{}\n", root.trim_end_matches('=')),
        format!("o\n42\n{root} \n"),
        format!("o\n42\n{root}\n\n"),
        format!("o\n42\n{root}\next\n\n"),
        format!("o\r\n42\n{root}\n"),
    ];
    for bad in cases {
        assert!(matches!(Checkpoint::parse_body(&bad), Err(NoteError::Malformed(_))), "{bad:?}");
    }
}
