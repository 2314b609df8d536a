//! Fails when the SAM template and the code drift apart: every function crate has a function resource that
//! builds its binary, a route, a queue, and every environment variable its configuration reads; and no
//! resource builds a binary that does not exist.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use payhooks::config::Config;
use payhooks::{providers, Provider};
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn template() -> Yaml {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).expect("infra/template.yaml");
    YamlLoader::load_from_str(&text).expect("template is YAML").remove(0)
}

/// Binary names of the crates under functions/, read from their Cargo.toml `[[bin]] name`.
fn function_binaries() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().path().join("Cargo.toml"))
        .map(|manifest| {
            let text = std::fs::read_to_string(&manifest).unwrap();
            let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
            let name = doc["bin"].as_array().and_then(|bins| bins.first()).and_then(|bin| bin["name"].as_str());
            name.unwrap_or_else(|| panic!("{}: no [[bin]] name", manifest.display())).to_owned()
        })
        .collect()
}

/// The environment variables the configuration reads for `provider`, found by running it with a lookup that
/// records what it is asked for.
fn env_read_by_config(provider: Provider) -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let _ = Config::from_lookup(provider, |name| {
        asked.borrow_mut().insert(name.to_owned());
        Some(match name {
            n if n.ends_with("SIGNATURE_HASH") => "sha256".to_owned(),
            n if n.ends_with("CANONICAL_DIALECTS") => "postman".to_owned(),
            n if n.ends_with("ALLOWED_SOURCE_IPS") => "10.0.0.0/8".to_owned(),
            n if n.ends_with("_BYTES") => "131072".to_owned(),
            n if n.ends_with("_SECS") || n.ends_with("_DAYS") => "1000000000".to_owned(),
            _ => "x".to_owned(),
        })
    });
    asked.into_inner()
}

fn keys(map: &Yaml) -> BTreeSet<String> {
    map.as_hash().map(|h| h.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

#[test]
fn every_function_crate_is_deployed_with_its_route_queue_and_environment() {
    let t = template();
    let resources = &t["Resources"];
    let global_env = keys(&t["Globals"]["Function"]["Environment"]["Variables"]);
    for provider in Provider::ALL {
        let name = provider.name();
        let (id, function) = resources
            .as_hash()
            .unwrap()
            .iter()
            .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no function resource builds binary `{name}`"));
        let id = id.as_str().unwrap();
        assert_eq!(function["Type"].as_str(), Some("AWS::Serverless::Function"), "{id}");
        assert_eq!(function["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{id}");
        assert_eq!(function["Properties"]["CodeUri"].as_str(), Some(format!("../functions/{name}").as_str()), "{id}");

        let path = providers::route(provider).pattern(provider);
        let events = function["Properties"]["Events"].as_hash().unwrap();
        assert!(
            events.values().any(|e| e["Type"].as_str() == Some("HttpApi")
                && e["Properties"]["Method"].as_str() == Some("POST")
                && e["Properties"]["Path"].as_str() == Some(path.as_str())),
            "{id} has no route POST {path}"
        );

        let env = &function["Properties"]["Environment"]["Variables"];
        let mut deployed = global_env.clone();
        deployed.extend(keys(env));
        let mut needed = env_read_by_config(provider);
        // Deployed functions read their secrets from SSM; WEBHOOK_SECRETS and MUDA_SIGNING_KEYS (values inline)
        // are for local runs and tests only.
        needed.remove("WEBHOOK_SECRETS");
        needed.remove("MUDA_SIGNING_KEYS");
        assert!(needed.contains("WEBHOOK_SECRETS_PARAM") && needed.contains("EVENTS_QUEUE_URL"), "{needed:?}");
        let missing: Vec<_> = needed.difference(&deployed).collect();
        assert!(missing.is_empty(), "{id} lacks environment variables its config reads: {missing:?}");
        let extra: Vec<_> = keys(env).into_iter().filter(|k| !needed.contains(k) && k != "RUST_LOG").collect();
        assert!(extra.is_empty(), "{id} sets variables its config never reads: {extra:?}");

        let queue_id = env["EVENTS_QUEUE_URL"].as_str().expect("EVENTS_QUEUE_URL is a !Ref to a queue");
        let queue = &resources[queue_id];
        assert_eq!(queue["Type"].as_str(), Some("AWS::SQS::Queue"), "{queue_id}");
        assert_eq!(queue["Properties"]["FifoQueue"].as_bool(), Some(true), "{queue_id}");
        // A batch's events are sent concurrently: FIFO's 300 sends a second must not apply to the whole queue.
        assert_eq!(queue["Properties"]["DeduplicationScope"].as_str(), Some("messageGroup"), "{queue_id}");
        assert_eq!(queue["Properties"]["FifoThroughputLimit"].as_str(), Some("perMessageGroupId"), "{queue_id}");
        assert_eq!(queue["Properties"]["RedrivePolicy"]["maxReceiveCount"].as_i64(), Some(5), "{queue_id}");
        let most = queue["Properties"]["MaximumMessageSize"].as_i64();
        assert_eq!(
            most,
            Some(payhooks::aws::MAX_MESSAGE_BYTES as i64),
            "{queue_id}: the size every message is held to"
        );
    }
}

#[test]
fn no_resource_builds_a_binary_that_does_not_exist() {
    let binaries = function_binaries();
    let mut expected: BTreeSet<String> = Provider::ALL.iter().map(|p| p.name().to_owned()).collect();
    expected.insert("sweeper".to_owned());
    assert_eq!(binaries, expected, "functions/ holds one crate per provider, and the sweeper");
    for (id, resource) in template()["Resources"].as_hash().unwrap() {
        if let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() {
            assert!(binaries.contains(binary), "{id:?} builds `{binary}`, which no crate under functions/ defines");
        }
    }
}

#[test]
fn least_privilege_no_wildcard_resources() {
    let t = template();
    for (id, resource) in t["Resources"].as_hash().unwrap() {
        for policy in resource["Properties"]["Policies"].as_vec().into_iter().flatten() {
            for statement in policy["Statement"].as_vec().into_iter().flatten() {
                let text = format!("{statement:?}");
                assert!(!text.contains("\"*\""), "{id:?} grants a wildcard: {text}");
                for action in statement["Action"].as_vec().cloned().unwrap_or_else(|| vec![statement["Action"].clone()])
                {
                    let action = action.as_str().unwrap_or_default();
                    assert!(
                        action.is_empty()
                            || [
                                "dynamodb:PutItem",
                                "dynamodb:UpdateItem",
                                "dynamodb:GetItem",
                                "dynamodb:BatchGetItem",
                                "dynamodb:Query",
                                "sqs:SendMessage",
                                "sqs:GetQueueAttributes",
                                "ssm:GetParameter",
                                "kms:Decrypt"
                            ]
                            .contains(&action),
                        "{id:?} grants {action}"
                    );
                }
            }
        }
    }
}

#[test]
fn lambdas_build_without_the_test_helpers() {
    // payhooks-send needs the signers only, not the test helpers.
    let send = std::fs::read_to_string(root().join("tools/send/Cargo.toml")).unwrap();
    assert!(send.contains("features = [\"signing\"]") && !send.contains("test-util"), "tools/send: {send}");
    for entry in std::fs::read_dir(root().join("functions")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(!text.contains("test-util"), "{} enables payhooks' test-util feature", manifest.display());
        assert!(!text.contains("signing"), "{} enables payhooks' signing feature", manifest.display());
    }
}

/// The SDK's default HTTPS client brings `aws-lc-rs`, a second crypto library (and megabytes per function):
/// the workspace resolves to rustls over ring only (README, Dependencies).
#[test]
fn one_tls_and_crypto_provider_in_the_tree() {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let packages: BTreeSet<&str> =
        lock.lines().filter_map(|line| line.strip_prefix("name = \"")?.strip_suffix('"')).collect();
    for second in ["aws-lc-rs", "aws-lc-sys", "openssl", "native-tls"] {
        assert!(!packages.contains(second), "Cargo.lock resolves {second}: turn the SDK's default-https-client off");
    }
    assert!(packages.contains("ring") && packages.contains("rustls"));
}

/// The README's promise that release builds compile out debug and trace events (0.48 MB a function): the
/// workspace's `tracing` carries the static level feature.
#[test]
fn release_builds_compile_out_debug_and_trace() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let tracing = manifest.lines().find(|line| line.starts_with("tracing =")).expect("a workspace `tracing`");
    assert!(tracing.contains("\"release_max_level_info\""), "{tracing}");
}

/// The sweeper runs every minute, reads every variable its configuration asks for, may query only the
/// sparse index, and may send to the five queues and nothing else.
#[test]
fn the_sweeper_is_scheduled_and_least_privileged() {
    let t = template();
    let (id, sweeper) = t["Resources"]
        .as_hash()
        .unwrap()
        .iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some("sweeper"))
        .expect("a function builds the sweeper");
    let props = &sweeper["Properties"];
    assert_eq!(props["CodeUri"].as_str(), Some("../functions/sweeper"), "{id:?}");
    assert!(
        props["Events"].as_hash().unwrap().values().any(|e| e["Type"].as_str() == Some("Schedule")
            && e["Properties"]["Schedule"].as_str() == Some("rate(1 minute)")),
        "the sweeper runs every minute"
    );

    let asked = RefCell::new(BTreeSet::new());
    let _ = payhooks::config::SweeperConfig::from_lookup(|name| {
        asked.borrow_mut().insert(name.to_owned());
        Some("x".to_owned())
    });
    let mut deployed = keys(&t["Globals"]["Function"]["Environment"]["Variables"]);
    deployed.extend(keys(&props["Environment"]["Variables"]));
    let missing: Vec<_> = asked.borrow().difference(&deployed).cloned().collect();
    assert!(missing.is_empty(), "the sweeper lacks {missing:?}");

    let statements: Vec<&Yaml> = props["Policies"][0]["Statement"].as_vec().unwrap().iter().collect();
    let actions = |s: &Yaml| -> Vec<String> {
        s["Action"]
            .as_vec()
            .cloned()
            .unwrap_or_else(|| vec![s["Action"].clone()])
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    };
    for statement in &statements {
        for action in actions(statement) {
            let resource = format!("{:?}", statement["Resource"]);
            match action.as_str() {
                "dynamodb:Query" => {
                    assert!(resource.contains("/index/pending-index"), "Query only on the index: {resource}")
                }
                "dynamodb:GetItem" | "dynamodb:UpdateItem" => assert!(resource.contains("EventsTable")),
                "sqs:SendMessage" => {
                    for provider in Provider::ALL {
                        let queue = format!(
                            "{}Queue",
                            match provider {
                                Provider::M2Money => "M2Money".to_owned(),
                                other => {
                                    let n = other.name();
                                    n[..1].to_ascii_uppercase() + &n[1..]
                                }
                            }
                        );
                        assert!(resource.contains(&queue), "SendMessage to {queue}: {resource}");
                    }
                }
                other => panic!("the sweeper needs no {other}"),
            }
        }
    }
}

/// The operations alarms exist (one authentication-failure alarm per provider) on metrics the code emits,
/// and the dashboard body is JSON.
#[test]
fn operations_alarms_and_dashboard() {
    let t = template();
    let resources = t["Resources"].as_hash().unwrap();
    let alarms: Vec<(&str, Option<&str>)> = resources
        .values()
        .filter(|r| {
            r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
                && r["Properties"]["Namespace"].as_str() == Some("Payhooks")
        })
        .map(|r| (r["Properties"]["MetricName"].as_str().unwrap(), r["Properties"]["Dimensions"][0]["Value"].as_str()))
        .collect();
    for metric in ["Quarantined", "Contradiction", "Conflict", "Swept", "SweepFailed"] {
        assert!(alarms.contains(&(metric, None)), "no alarm on {metric}: {alarms:?}");
    }
    for provider in Provider::ALL {
        assert!(alarms.contains(&("AuthFailed", Some(provider.name()))), "no AuthFailed alarm for {provider}");
    }
    let sweeper_errors = resources.values().any(|r| {
        r["Properties"]["Namespace"].as_str() == Some("AWS/Lambda")
            && r["Properties"]["MetricName"].as_str() == Some("Errors")
            && r["Properties"]["Dimensions"][0]["Value"].as_str() == Some("SweeperFunction")
    });
    assert!(sweeper_errors, "no alarm on the sweeper's Errors");
    let dashboard = resources.values().find(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Dashboard")).unwrap();
    let body = dashboard["Properties"]["DashboardBody"][0].as_str().expect("a !Sub body");
    let parsed: serde_json::Value = serde_json::from_str(&body.replace("${AWS::Region}", "us-east-1")).unwrap();
    let text = parsed.to_string();
    for metric in
        ["Accepted", "Rejected", "SecretIndex", "ClockSkew", "Regression", "StoreLatency", "IngestDuration", "Swept"]
    {
        assert!(text.contains(metric), "the dashboard lacks {metric}");
    }
}

/// Each provider's function may touch only its own items: its DynamoDB statement is conditioned on
/// `dynamodb:LeadingKeys` with exactly the key prefixes that provider's records use (so Lipia, authenticated by
/// a URL token, cannot write a Niobi marker).
#[test]
fn each_function_reads_and_writes_only_its_own_items() {
    let t = template();
    for (id, resource) in t["Resources"].as_hash().unwrap() {
        let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() else { continue };
        let Ok(provider) = binary.parse::<Provider>() else { continue };
        let statements = resource["Properties"]["Policies"][0]["Statement"].as_vec().unwrap();
        let dynamodb: Vec<&Yaml> =
            statements.iter().filter(|s| format!("{:?}", s["Action"]).contains("dynamodb:")).collect();
        assert_eq!(dynamodb.len(), 1, "{id:?}: one DynamoDB statement");
        let keys: Vec<&str> = dynamodb[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            .as_vec()
            .unwrap_or_else(|| panic!("{id:?}: no LeadingKeys condition"))
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let p = provider.name();
        let own = [format!("{p}:*"), format!("body#{p}#*"), format!("sig#{p}#*"), format!("txn#{p}#*"), "warm#".into()];
        assert_eq!(keys, own, "{id:?}");
    }
}

/// Every function logs to a log group of the template's, kept `LogRetentionDays` (tags such as `!Ref` are read as
/// their value).
#[test]
fn every_function_has_a_log_group_with_retention() {
    let t = template();
    let resources = t["Resources"].as_hash().unwrap();
    for binary in function_binaries() {
        let (id, function) = resources
            .iter()
            .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary.as_str()))
            .unwrap_or_else(|| panic!("no function builds {binary}"));
        let group = function["Properties"]["LoggingConfig"]["LogGroup"]
            .as_str()
            .unwrap_or_else(|| panic!("{id:?} logs to no log group of the template's"));
        let group = &t["Resources"][group];
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{binary}");
        assert_eq!(group["Properties"]["RetentionInDays"].as_str(), Some("LogRetentionDays"), "{binary}");
    }
}

/// The recipe of a Makefile target: its lines up to the next target.
fn recipe(makefile: &str, target: &str) -> String {
    let start = makefile.find(&format!("\n{target}:")).unwrap_or_else(|| panic!("no target {target}"));
    makefile[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| {
            l.starts_with('\t')
                || l.is_empty()
                || l.starts_with("ifeq")
                || l.starts_with("else")
                || l.starts_with("endif")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One architecture setting: `make build` builds for ARCH and records it; `make deploy` and `make
/// deploy-functions` deploy what was built into functions of that architecture; nothing else names one.
#[test]
fn build_and_deploy_agree_on_the_architecture() {
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let build = recipe(&makefile, "build");
    assert!(build.contains("sam build --parameter-overrides Architecture=$(ARCH)"), "{build}");
    assert!(build.contains("$(if $(filter arm64,$(ARCH)),--arm64,--x86-64)"), "{build}");
    assert!(build.contains("echo $(ARCH) > $(BUILT_ARCH)"), "make build records what it built: {build}");
    let deploy = recipe(&makefile, "deploy");
    assert!(deploy.contains("--parameter-overrides Architecture=$$(cat ../$(BUILT_ARCH))"), "{deploy}");
    let functions = recipe(&makefile, "deploy-functions");
    assert!(functions.contains("--arch $$(cat $(BUILT_ARCH))"), "{functions}");

    let samconfig = std::fs::read_to_string(root().join("infra/samconfig.toml")).unwrap();
    let overrides = samconfig.lines().find(|l| l.starts_with("parameter_overrides")).unwrap_or_default();
    assert!(!overrides.contains("Architecture"), "samconfig.toml must not pick an architecture: {overrides}");
    let t = template();
    assert_eq!(t["Globals"]["Function"]["Architectures"][0].as_str(), Some("Architecture"), "!Ref Architecture");
    assert_eq!(t["Outputs"]["Architecture"]["Value"].as_str(), Some("Architecture"));
    for (id, r) in t["Resources"].as_hash().unwrap() {
        assert!(r["Properties"]["Architectures"].is_badvalue(), "{id:?} sets its own architecture");
    }
}

/// Every stack output the admin tool reads exists in the template, the tests' moto stack has only outputs
/// the template has, and every function has the fixed name `make deploy-functions` deploys to.
#[test]
fn the_admin_tools_stack_outputs_exist() {
    use payhooks_admin::deployment::{Function, Part};
    let t = template();
    let outputs = keys(&t["Outputs"]);
    let mut parts = vec![Part::Table, Part::AlarmTopic, Part::SecretsParameterPrefix, Part::Architecture];
    for provider in Provider::ALL {
        parts.extend([Part::Queue(provider), Part::CallbackUrl(provider)]);
    }
    for f in Function::all() {
        parts.extend([Part::FunctionName(f), Part::FunctionRole(f)]);
        let resource = &t["Resources"][format!("{}Function", f.template_name()).as_str()];
        assert_eq!(resource["Metadata"]["BuildProperties"]["Binary"].as_str(), Some(f.binary()));
        assert_eq!(
            resource["Properties"]["FunctionName"].as_str(),
            Some(format!("${{AWS::StackName}}-{}", f.binary()).as_str())
        );
    }
    for part in parts {
        assert!(outputs.contains(&part.output()), "the template has no output {}", part.output());
    }
    let test_stack = std::fs::read_to_string(root().join("tests/it/stack.yaml")).unwrap();
    let test_stack = YamlLoader::load_from_str(&test_stack).unwrap().remove(0);
    let extra: Vec<String> = keys(&test_stack["Outputs"]).difference(&outputs).cloned().collect();
    assert!(extra.is_empty(), "tests/it/stack.yaml has outputs the template lacks: {extra:?}");
    let parameters = keys(&t["Parameters"]);
    let extra: Vec<String> = keys(&test_stack["Parameters"]).difference(&parameters).cloned().collect();
    assert!(extra.is_empty(), "tests/it/stack.yaml has parameters the template lacks: {extra:?}");
}

/// Each provider's route has its own throttles; no alarm is without an action (the template creates a topic
/// when none is given); the custom domain maps to the API.
#[test]
fn routes_are_throttled_per_provider_and_every_alarm_notifies() {
    let t = template();
    let api = &t["Resources"]["WebhookApi"]["Properties"];
    for provider in Provider::ALL {
        let key = format!("POST {}", providers::route(provider).pattern(provider));
        let route = &api["RouteSettings"][key.as_str()];
        let name = provider.template_name();
        assert_eq!(route["ThrottlingRateLimit"].as_str(), Some(format!("{name}RateLimit").as_str()), "{key}");
        assert_eq!(route["ThrottlingBurstLimit"].as_str(), Some(format!("{name}BurstLimit").as_str()), "{key}");
    }
    for (id, r) in t["Resources"].as_hash().unwrap() {
        if r["Type"].as_str() == Some("AWS::CloudWatch::Alarm") {
            let actions = r["Properties"]["AlarmActions"].as_vec().unwrap_or_else(|| panic!("{id:?} has no action"));
            // `[!If [HasAlarmTopic, !Ref AlarmTopicArn, !Ref AlarmTopic]]`, tags dropped.
            let choice: Vec<&str> = actions[0].as_vec().unwrap().iter().filter_map(Yaml::as_str).collect();
            assert_eq!(choice, ["HasAlarmTopic", "AlarmTopicArn", "AlarmTopic"], "{id:?}");
        }
    }
    assert_eq!(t["Resources"]["AlarmTopic"]["Condition"].as_str(), Some("CreatesAlarmTopic"));
    // CloudWatch cannot publish to a topic under the AWS-managed key: the alarms would be silent.
    assert_ne!(t["Resources"]["AlarmTopic"]["Properties"]["KmsMasterKeyId"].as_str(), Some("alias/aws/sns"));
    assert_eq!(t["Resources"]["ApiDomainMapping"]["Properties"]["ApiId"].as_str(), Some("WebhookApi"));
}

/// The reference consumer's wiring: partial batch failures, and a function timeout within a sixth of the
/// payhooks queues' visibility timeout (SQS's rule for event source mappings), so a message is not
/// delivered again while the consumer still works on it.
#[test]
fn the_reference_consumer_is_wired_as_sqs_asks() {
    let text = std::fs::read_to_string(root().join("examples/consumer/template.yaml")).unwrap();
    let consumer = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let function = &consumer["Resources"]["ConsumerFunction"]["Properties"];
    let source = &function["Events"]["Events"]["Properties"];
    assert_eq!(source["FunctionResponseTypes"][0].as_str(), Some("ReportBatchItemFailures"));
    let timeout = function["Timeout"].as_i64().unwrap();
    let t = template();
    for provider in Provider::ALL {
        let queue = &t["Resources"][format!("{}Queue", provider.template_name()).as_str()]["Properties"];
        let visibility = queue["VisibilityTimeout"].as_i64().unwrap();
        assert!(timeout * 6 <= visibility, "{provider}: visibility {visibility} s < 6 x the consumer's {timeout} s");
    }
}

/// Where a provider may be named in code, as docs/development.md's "Adding a sixth provider" lists: its module,
/// the enum and the dispatch, its fixtures, its function crate and the template; besides, the test helpers,
/// the consumer crate's published contract and the Python twin (both named in that recipe).
fn may_name_a_provider(path: &str, provider: Provider) -> bool {
    let own = [
        format!("shared/src/providers/{provider}.rs"),
        format!("functions/{provider}/"),
        format!("tests/fixtures/{provider}/"),
    ];
    own.iter().any(|p| path.starts_with(p.as_str()))
        || [
            "shared/src/provider.rs",
            "shared/src/providers/mod.rs",
            "shared/src/testing/",
            "events/src/",
            "tools/chaos/src/traffic.rs",
        ]
        .iter()
        .any(|p| path.starts_with(p))
}

/// A file's code: no comments, no `#[cfg(test)] mod tests`.
fn code_of(text: &str) -> String {
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end].lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_sixth_provider_touches_only_what_the_recipe_lists() {
    let recipe = std::fs::read_to_string(root().join("docs/development.md")).unwrap();
    for place in [
        "shared/src/providers/<name>.rs",
        "`Provider::<Name>`",
        "tests/fixtures/<name>/",
        "functions/<name>/",
        "infra/template.yaml",
    ] {
        assert!(recipe.contains(place), "docs/development.md's recipe names {place}");
    }
    let mut sources = Vec::new();
    let mut dirs: Vec<PathBuf> =
        ["shared/src", "tools", "functions/sweeper", "examples/consumer/src"].iter().map(|d| root().join(d)).collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root()).unwrap().to_string_lossy().into_owned();
            if path.is_dir() && !relative.ends_with("/tests") && !relative.contains("target") {
                dirs.push(path);
            } else if relative.ends_with(".rs") && relative.contains("/src/") {
                sources.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut found = Vec::new();
    for provider in Provider::ALL {
        let needles = [
            format!("Provider::{}", provider.template_name()),
            format!("\"{provider}\""),
            format!("{}_", provider.name().to_ascii_uppercase()),
        ];
        for (path, text) in &sources {
            if may_name_a_provider(path, provider) {
                continue;
            }
            let code = code_of(text);
            for needle in &needles {
                if code.contains(needle.as_str()) {
                    found.push(format!("{path}: {needle}"));
                }
            }
        }
    }
    assert!(sources.len() > 40, "the walk found the sources: {}", sources.len());
    assert!(
        found.is_empty(),
        "a provider named outside the recipe's places (move it into its module):\n{}",
        found.join("\n")
    );
}
