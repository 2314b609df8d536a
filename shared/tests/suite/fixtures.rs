//! Every fixture (one per payload variant in the providers' documents) authenticates, parses and
//! normalises to the expected events.

use payhooks::testing;

use chrono::Utc;
use payhooks::config::VerifyConfig;
use payhooks::envelope::CloudEvent;
use payhooks::testing::TestRequest;
use payhooks::Provider::{self, *};

/// An expected event: (id, type, amount).
type Expected = (&'static str, &'static str, Option<&'static str>);

/// (provider, fixture, expected events)
#[rustfmt::skip]
const EXPECTED: &[(Provider, &str, &[Expected])] = &[
    (Niobi, "payin_ussd_push", &[("niobi:payin:A7KQ2M9XW001:000000", "niobi.payin.succeeded", Some("10"))]),
    (Niobi, "payin_payment_link", &[("niobi:payin:A7KQ2M9XW002:000000", "niobi.payin.succeeded", Some("250.50"))]),
    (Niobi, "payout_success", &[("niobi:payout:bd8f51a2-6c1e-4f0b-9a57-3e2d1c0b9a8f:000000", "niobi.payout.succeeded", Some("1000"))]),
    (Niobi, "payin_timeout", &[("niobi:payin:A7KQ2M9XW001:000006", "niobi.payin.timeout", Some("10"))]),
    (M2Money, "payout_success", &[("m2money:payout:ORD2025112200017:payout.transfer.success", "m2money.payout.succeeded", Some("1500.00"))]),
    (M2Money, "payout_failed", &[("m2money:payout:ORD2025112200017:payout.transfer.failed", "m2money.payout.failed", Some("1500.00"))]),
    (M2Money, "payout_reversed", &[("m2money:payout:ORD2025112200017:payout.transfer.reverse", "m2money.payout.reversed", Some("1500.00"))]),
    (Lipia, "stk_success", &[("lipia:stk:ws_CO_22112025101500123456:success", "lipia.stk.succeeded", Some("100"))]),
    (Lipia, "stk_failed", &[("lipia:stk:ws_CO_22112025101700654321:failed", "lipia.stk.failed", Some("100"))]),
    (Lipia, "stk_success_unwrapped", &[("lipia:stk:ws_CO_22112025102000777777:success", "lipia.stk.succeeded", Some("100"))]),
    (Muda, "transaction_status_pending", &[("muda:transaction:5f0c8a3e-1b2d-4c5e-8f9a-0b1c2d3e4f50:PENDING", "muda.transaction.pending", Some("10000"))]),
    (Muda, "transaction_status_success", &[("muda:transaction:5f0c8a3e-1b2d-4c5e-8f9a-0b1c2d3e4f50:SUCCESS", "muda.transaction.succeeded", Some("10000"))]),
    (Muda, "transaction_status_failed", &[("muda:transaction:5f0c8a3e-1b2d-4c5e-8f9a-0b1c2d3e4f50:FAILED", "muda.transaction.failed", Some("10000"))]),
    (Muda, "transaction_event_pending", &[("muda:transaction:9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d:PENDING", "muda.transaction.pending", Some("25000"))]),
    (Muda, "transaction_event_success", &[("muda:transaction:9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d:SUCCESS", "muda.transaction.succeeded", Some("25000"))]),
    (Muda, "transaction_event_failed", &[("muda:transaction:9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d:FAILED", "muda.transaction.failed", Some("25000"))]),
    (Choice, "0001_onboarding", &[("choice:0001:BAAS000120251122000001", "choice.onboarding.account_opened", None)]),
    (Choice, "0002_transaction", &[("choice:0002:BAAS000220251122000001", "choice.transaction.succeeded", Some("1500.00"))]),
    (Choice, "0003_balance_change", &[("choice:0003:BAAS000320251122000001", "choice.balance_change.succeeded", Some("1500.00"))]),
    (Choice, "0004_merchant_bulk_transfer", &[
        ("choice:0004:BAAS000420251122000001:0", "choice.bulk_transfer.succeeded", Some("500.00")),
        ("choice:0004:BAAS000420251122000001:1", "choice.bulk_transfer.failed", Some("750.00")),
    ]),
    (Choice, "0005_wallet_upgrade", &[("choice:0005:BAAS000520251122000001", "choice.wallet_upgrade.account_opened", None)]),
    (Choice, "0006_sme_account_opening", &[("choice:0006:BAAS000620251122000001", "choice.sme_account_opening.rejected", None)]),
    (Choice, "0007_utility_payment", &[("choice:0007:BAAS000720251122000001", "choice.utility_payment.succeeded", Some("100.00"))]),
    (Choice, "0008_bulk_transfer", &[
        ("choice:0008:BAAS000820251122000001:0", "choice.bulk_transfer.succeeded", Some("1200.00")),
        ("choice:0008:BAAS000820251122000001:1", "choice.bulk_transfer.failed", Some("3400.00")),
    ]),
    (Choice, "0012_multi_account_opening", &[("choice:0012:BAAS001220251122000001", "choice.account_opening.succeeded", None)]),
    (Choice, "0013_foreign_exchange", &[("choice:0013:BAAS001320251122000001", "choice.fx.unknown", Some("100.00"))]),
    (Choice, "0014_bulk_airtime", &[
        ("choice:0014:BAAS001420251122000001:0", "choice.airtime_purchase.succeeded", Some("50.00")),
        ("choice:0014:BAAS001420251122000001:1", "choice.airtime_purchase.failed", Some("20.00")),
    ]),
    (Choice, "0015_file_job", &[("choice:0015:BAAS001520251122000001", "choice.file_job.ready", None)]),
    (Choice, "0016_interest_disbursement", &[("choice:0016:BAAS001620251122000001", "choice.interest_disbursement.succeeded", None)]),
    (Choice, "0019_account_closure", &[("choice:0019:BAAS001920251122000001", "choice.account_closure.closed", None)]),
    (Choice, "0020_otp_verification", &[("choice:0020:BAAS002020251122000001", "choice.otp.received", None)]),
    (Choice, "0021_account_status_change", &[("choice:0021:BAAS002120251122000001", "choice.account_status_change.frozen", None)]),
    (Choice, "0022_merchant_balance_change", &[("choice:0022:BAAS002220251122000001", "choice.merchant_balance_change.succeeded", Some("2500.00"))]),
    (Choice, "0023_interbank_transfer", &[("choice:0023:BAAS002320251122000001", "choice.interbank_transfer.succeeded", Some("50000.00"))]),
    (Choice, "0024_profile_check", &[("choice:0024:BAAS002420251122000001", "choice.profile_check.validated", None)]),
    (Choice, "0025_fixed_deposit", &[("choice:0025:BAAS002520251122000001", "choice.fixed_deposit.succeeded", None)]),
    (Choice, "0028_cny_transfer", &[("choice:0028:BAAS002820251122000001", "choice.cny_transfer.unknown", Some("10.0000"))]),
];

#[test]
fn every_fixture_normalises_to_its_events() {
    let now = Utc::now();
    for (provider, name, expected) in EXPECTED {
        let req = TestRequest::signed_fixture(*provider, name, now);
        let callback = req.check(*provider, &VerifyConfig::default(), now).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got: Vec<(String, String, Option<String>)> =
            callback.events.iter().map(|e| (e.id.clone(), e.event_type(*provider), e.amount.clone())).collect();
        let want: Vec<(String, String, Option<String>)> =
            expected.iter().map(|(id, ty, amt)| (id.to_string(), ty.to_string(), amt.map(str::to_owned))).collect();
        assert_eq!(got, want, "{provider:?} {name}");
    }
}

#[test]
fn every_fixture_file_has_an_expectation() {
    for provider in Provider::ALL {
        for (name, _) in testing::all_fixtures(provider) {
            assert!(
                EXPECTED.iter().any(|(p, n, _)| *p == provider && *n == name),
                "no expectation for {provider:?}/{name}"
            );
        }
    }
}

#[test]
fn envelope_is_cloudevents_with_payload_as_received() {
    let now = Utc::now();
    let req = TestRequest::signed_fixture(Niobi, "payin_payment_link", now);
    let callback = req.check(Niobi, &VerifyConfig::default(), now).unwrap();
    let event = &callback.events[0];
    let json: serde_json::Value =
        serde_json::from_str(&CloudEvent::event(Niobi, event, now).message(None, &callback.payload)).unwrap();
    assert_eq!(json["specversion"], "1.0");
    assert_eq!(json["id"], "niobi:payin:A7KQ2M9XW002:000000");
    assert_eq!(json["source"], "payhooks/niobi");
    assert_eq!(json["type"], "niobi.payin.succeeded");
    assert_eq!(json["subject"], "A7KQ2M9XW002");
    assert_eq!(json["datacontenttype"], "application/json");
    let data = &json["data"];
    assert_eq!(data["provider"], "niobi");
    assert_eq!(data["kind"], "payin");
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["provider_status"], "000000");
    assert_eq!(data["amount"], "250.50");
    assert_eq!(data["merchant_reference"], "ORDER-77");
    assert!(data["payload"].get("signature").is_none(), "signature must be removed from the payload");
    assert_eq!(data["payload"]["params"]["payment_link_id"], "PL-8841");
    // Number text survives byte for byte inside the payload.
    assert!(callback.payload.contains("\"amount\":250.50") || callback.payload.contains("\"amount\": 250.50"));
}

#[test]
fn niobi_accepts_status_code_spelling() {
    let now = Utc::now();
    let body = testing::fixture(Niobi, "payin_timeout").replace("\"statusCode\"", "\"status_code\"");
    let req = TestRequest::from_signed(Niobi, &testing::sign(Niobi, &body, testing::SECRET, now));
    let callback = req.check(Niobi, &VerifyConfig::default(), now).unwrap();
    assert_eq!(callback.events[0].id, "niobi:payin:A7KQ2M9XW001:000006");
}

#[test]
fn choice_accepts_string_timestamp_and_unknown_types() {
    let now = Utc::now();
    // 0020 carries its timestamp as a string.
    let req = TestRequest::signed_fixture(Choice, "0020_otp_verification", now);
    assert!(req.check(Choice, &VerifyConfig::default(), now).is_ok());
    let body = testing::fixture(Choice, "0015_file_job").replace("\"0015\"", "\"0027\"");
    let req = TestRequest::from_signed(Choice, &testing::sign(Choice, &body, testing::SECRET, now));
    let callback = req.check(Choice, &VerifyConfig::default(), now).unwrap();
    assert_eq!(callback.events[0].event_type(Choice), "choice.notification_0027.unknown");
}

#[test]
fn amount_as_number_or_string_keeps_its_text() {
    let now = Utc::now();
    let body = testing::fixture(M2Money, "payout_success").replace("\"1500.00\"", "1500.00");
    let req = TestRequest::from_signed(M2Money, &testing::sign(M2Money, &body, testing::SECRET, now));
    let callback = req.check(M2Money, &VerifyConfig::default(), now).unwrap();
    assert_eq!(callback.events[0].amount.as_deref(), Some("1500.00"));
}

#[test]
fn content_hash_ignores_salt_timestamp_and_signature_only() {
    let now = Utc::now();
    let first = TestRequest::signed_fixture(Choice, "0002_transaction", now);
    let later = now + chrono::Duration::seconds(90);
    let resalted = testing::fixture(Choice, "0002_transaction").replace("Qc3wsZ123da", "otherSalt");
    let second = TestRequest::from_signed(Choice, &testing::sign(Choice, &resalted, testing::SECRET, later));
    let changed = testing::fixture(Choice, "0002_transaction").replace("1500.00", "1600.00");
    let third = TestRequest::from_signed(Choice, &testing::sign(Choice, &changed, testing::SECRET, now));
    let hash = |r: &TestRequest, at| r.check(Choice, &VerifyConfig::default(), at).unwrap().content_hash;
    assert_eq!(hash(&first, now), hash(&second, later));
    assert_ne!(hash(&first, now), hash(&third, now));
}

/// The facts beside the amount, each from the field the provider's document names (docs/envelope.md), and
/// none of them personal data.
#[test]
fn the_facts_a_consumer_needs_come_from_the_documented_fields() {
    let now = Utc::now();
    let facts = |provider: Provider, name: &str| {
        let req = TestRequest::signed_fixture(provider, name, now);
        let callback = req.check(provider, &VerifyConfig::default(), now).unwrap();
        let f = &callback.events[0].facts;
        (f.fee.clone(), f.provider_reference.clone(), f.provider_time.clone(), f.counterparty.clone())
    };
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(facts(Niobi, "payin_ussd_push"), (some("0.3"), some("SKJ3F5TQ1Z"), None, None));
    assert_eq!(
        facts(Niobi, "payout_success"),
        (some("5"), some("SII6ZH9PU0"), some("2025-11-22 00:00:00"), some("Send Money"))
    );
    assert_eq!(
        facts(Choice, "0002_transaction"),
        (some("10.00"), some("SKL5T7QW2E"), some("1763799950000"), some("MPESA"))
    );
    assert_eq!(facts(M2Money, "payout_success"), (None, some("5196261"), None, some("CON-5531")));
    assert_eq!(facts(Lipia, "stk_success"), (None, some("NEF61H8J60"), None, None));
    assert_eq!(facts(Muda, "transaction_event_success"), (some("500"), None, some("2025-11-22T12:05:00Z"), None));
    // A fee that is no decimal, or a receipt that is not plain text, is left out: never a quarantine.
    let body = testing::fixture(Muda, "transaction_event_success").replace("\"500\"", "\"5 00\"");
    let req = TestRequest::signed(Muda, &body, testing::SECRET, now);
    let callback = req.check(Muda, &VerifyConfig::default(), now).unwrap();
    assert_eq!((callback.events.len(), callback.events[0].facts.fee.clone()), (1, None));
    // A fact of another shape (an object, an array) is left out too: the payment is still the payment.
    for (provider, name, from, to) in [
        (Choice, "0002_transaction", "\"feeAmount\": \"10.00\"", "\"feeAmount\": {\"value\": \"10.00\"}"),
        (Lipia, "stk_success", "\"MpesaReceiptNumber\": \"NEF61H8J60\"", "\"MpesaReceiptNumber\": [\"NEF61H8J60\"]"),
    ] {
        let body = testing::fixture(provider, name).replace(from, to);
        assert_ne!(body, testing::fixture(provider, name), "{name}: the fixture has the fact");
        let req = TestRequest::signed(provider, &body, testing::SECRET, now);
        let callback = req.check(provider, &VerifyConfig::default(), now).unwrap();
        assert!(callback.quarantined.is_empty(), "{name}: quarantined for a fact's shape");
        assert_eq!(callback.events.len(), 1, "{name}");
    }
}
