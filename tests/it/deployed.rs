//! A deployed stack's edges against moto: `make deploy-functions` (cargo lambda deploy of every function,
//! configured from the stack's outputs), then `payhooks-admin --stack` with `doctor`, `urls` and error chains
//! through its command line. moto's CloudFormation runs no SAM transform, so the stack is
//! `tests/it/stack.yaml` (the real template's outputs and parameters, the drift test holds them so); what
//! each function should be is read from `infra/template.yaml` itself, independently of the admin tool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_sdk_cloudformation::types::Parameter;
use aws_sdk_ssm::types::ParameterType;
use payhooks::Provider;
use payhooks_admin::cli::{exit_code, run, Cli};
use payhooks_admin::deployment::{Deployment, Function};
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::unique;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Every service on the one moto server that CloudFormation creates the stack's resources in.
fn one_endpoint() -> aws_types::SdkConfig {
    let url = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run with `make test`");
    aws_types::SdkConfig::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .http_client(payhooks::aws::https_client(payhooks::config::TlsRoots::Amazon))
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .endpoint_url(url)
        .build()
}

/// The architecture this machine builds (the Makefile's default here).
const ARCH: &str = "x86_64";

struct TestStack {
    sdk: aws_types::SdkConfig,
    name: String,
}

impl TestStack {
    /// The stack, its secret parameters (`/<stack>/<provider>`), its table's time to live and an alarm that
    /// notifies its topic, as the real stack has them.
    async fn create() -> Self {
        let sdk = one_endpoint();
        let name = unique("stack").replace('-', "x");
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        let template = std::fs::read_to_string(root().join("tests/it/stack.yaml")).unwrap();
        let param = |k: &str, v: &str| Parameter::builder().parameter_key(k).parameter_value(v).build();
        cfn.create_stack()
            .stack_name(&name)
            .template_body(template)
            .parameters(param("SecretsParameterPrefix", &format!("/{name}")))
            .parameters(param("Architecture", ARCH))
            .send()
            .await
            .expect("create stack");
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        for provider in Provider::ALL {
            ssm.put_parameter()
                .name(format!("/{name}/{provider}"))
                .value(format!("{provider}-token-new,{provider}-token-old"))
                .r#type(ParameterType::SecureString)
                .send()
                .await
                .unwrap();
        }
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        ddb.update_time_to_live()
            .table_name(format!("{name}-events"))
            .time_to_live_specification(
                aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let stack = Self { sdk, name };
        stack.put_alarm("ConflictAlarm", true).await;
        stack
    }

    /// An alarm as CloudFormation names one of the stack's (`<stack>-<LogicalId>-<suffix>`).
    async fn put_alarm(&self, logical_id: &str, with_action: bool) {
        let topic = format!("arn:aws:sns:us-east-1:123456789012:{}-alarms", self.name);
        let mut put = aws_sdk_cloudwatch::Client::new(&self.sdk)
            .put_metric_alarm()
            .alarm_name(format!("{}-{logical_id}-1A2B3C4D", self.name))
            .namespace("Payhooks")
            .metric_name("Conflict")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(300)
            .evaluation_periods(1)
            .threshold(0.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold);
        if with_action {
            put = put.alarm_actions(topic);
        }
        put.send().await.unwrap();
    }

    async fn deployment(&self) -> Deployment {
        Deployment::from_stack(&aws_sdk_cloudformation::Client::new(&self.sdk), &self.name).await.unwrap()
    }

    /// `make deploy-functions` without make: the admin tool's configuration, then the script, with
    /// stand-in binaries of this architecture (the deploy takes binaries from a directory and builds none).
    async fn deploy_functions(&self) -> PathBuf {
        let dir = std::env::temp_dir().join(&self.name);
        let (out, code, err) =
            self.admin(&["deploy-config", "--arch", ARCH, "--out", dir.join("config").to_str().unwrap()]).await;
        assert_eq!(code, 0, "{out}{err}");
        stand_in_binaries(&dir.join("lambda"), ARCH);
        let status = std::process::Command::new(root().join("scripts/deploy-functions.sh"))
            .args([dir.join("config"), dir.join("lambda")])
            .current_dir(root())
            .env("PATH", format!("{}:{}", root().join(".venv/bin").display(), std::env::var("PATH").unwrap()))
            .output()
            .unwrap();
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
        dir
    }

    /// `payhooks-admin --stack <this> ARGS`: what it printed, its exit code, what it said on stderr.
    async fn admin(&self, args: &[&str]) -> (String, u8, String) {
        let mut argv = vec!["payhooks-admin", "--stack", &self.name];
        argv.extend(args);
        let cli = <Cli as clap::Parser>::try_parse_from(argv).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let result = run(cli, &self.sdk, &mut out).await;
        let code = exit_code(&result, &mut err);
        (String::from_utf8(out).unwrap(), code, String::from_utf8(err).unwrap())
    }

    /// `doctor --json`: each check's name, whether it passed, and what it found.
    async fn doctor(&self) -> BTreeMap<String, (bool, String)> {
        let (out, _, _) = self.admin(&["doctor", "--json"]).await;
        let checks: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        checks
            .iter()
            .map(|c| {
                let text = |k: &str| c[k].as_str().unwrap().to_owned();
                (text("check"), (c["ok"].as_bool().unwrap(), text("detail")))
            })
            .collect()
    }

    async fn function(
        &self,
        name: &str,
    ) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
        aws_sdk_lambda::Client::new(&self.sdk).get_function_configuration().function_name(name).send().await.unwrap()
    }
}

/// A 64-byte ELF header of `arch`: enough for `cargo lambda deploy` to read the architecture from (moto runs
/// no code).
fn stand_in_binaries(dir: &Path, arch: &str) {
    let machine: u16 = if arch == "arm64" { 183 } else { 62 };
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for (value, width) in [
        (2u64, 2),
        (machine as u64, 2),
        (1, 4),
        (0, 8),
        (0, 8),
        (0, 8),
        (0, 4),
        (64, 2),
        (56, 2),
        (0, 2),
        (64, 2),
        (0, 2),
        (0, 2),
    ] {
        elf.extend_from_slice(&value.to_le_bytes()[..width]);
    }
    for f in Function::all() {
        std::fs::create_dir_all(dir.join(f.binary())).unwrap();
        std::fs::write(dir.join(f.binary()).join("bootstrap"), &elf).unwrap();
    }
}

/// What `infra/template.yaml` gives `binary`'s function in `stack`, read from the template (tags are lost in
/// the reading, so `!Ref X` reads as `X`): a parameter's value, or the stack output the real template sets
/// from the same reference; `!Sub` strings with their parameters.
struct TemplateSays {
    name: String,
    runtime: String,
    architecture: String,
    memory: i64,
    timeout: i64,
    role: String,
    environment: BTreeMap<String, String>,
}

fn template_says(binary: &str, stack: &Deployment) -> TemplateSays {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    let t = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let Deployment::Stack { name, outputs, parameters } = stack else { panic!("a stack") };
    let resolve = |value: &Yaml| -> String {
        let v = match value {
            Yaml::String(s) => s.clone(),
            Yaml::Integer(n) => n.to_string(),
            other => panic!("unexpected {other:?}"),
        };
        if let Some(p) = parameters.get(&v) {
            return p.clone();
        }
        // A reference to a resource: the stack output the real template sets from the same reference.
        let by_output = t["Outputs"].as_hash().unwrap().iter().find(|(_, o)| o["Value"].as_str() == Some(v.as_str()));
        if let Some((key, _)) = by_output {
            return outputs.get(key.as_str().unwrap()).unwrap_or_else(|| panic!("no output {key:?}")).clone();
        }
        let mut s = v.replace("${AWS::StackName}", name);
        for (k, p) in parameters {
            s = s.replace(&format!("${{{k}}}"), p);
        }
        assert!(!s.contains("${"), "unresolved {s}");
        s
    };
    let (id, function) = t["Resources"]
        .as_hash()
        .unwrap()
        .iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .unwrap();
    let globals = &t["Globals"]["Function"];
    let either = |key: &str| {
        if function["Properties"][key].is_badvalue() {
            globals[key].clone()
        } else {
            function["Properties"][key].clone()
        }
    };
    let mut environment = BTreeMap::new();
    for vars in [&globals["Environment"]["Variables"], &function["Properties"]["Environment"]["Variables"]] {
        for (k, v) in vars.as_hash().unwrap() {
            environment.insert(k.as_str().unwrap().to_owned(), resolve(v));
        }
    }
    TemplateSays {
        name: resolve(&function["Properties"]["FunctionName"]),
        runtime: globals["Runtime"].as_str().unwrap().to_owned(),
        architecture: resolve(&globals["Architectures"][0]),
        memory: either("MemorySize").as_i64().unwrap(),
        timeout: either("Timeout").as_i64().unwrap(),
        role: resolve(&Yaml::String(format!("{}Role.Arn", id.as_str().unwrap()))),
        environment,
    }
}

#[tokio::test]
#[ignore = "needs moto_server and cargo-lambda: run with `make test`"]
async fn deploy_functions_configures_every_function_as_the_sam_template_does() {
    let stack = TestStack::create().await;
    stack.deploy_functions().await;
    let deployment = stack.deployment().await;
    for f in Function::all() {
        let want = template_says(f.binary(), &deployment);
        let got = stack.function(&want.name).await;
        let env: BTreeMap<String, String> =
            got.environment().unwrap().variables().unwrap().clone().into_iter().collect();
        assert_eq!(got.runtime().unwrap().as_str(), want.runtime, "{f}");
        assert_eq!(got.architectures()[0].as_str(), want.architecture, "{f}");
        assert_eq!(got.memory_size().unwrap() as i64, want.memory, "{f}");
        assert_eq!(got.timeout().unwrap() as i64, want.timeout, "{f}");
        assert_eq!(got.role().unwrap(), want.role, "{f}");
        assert_eq!(env, want.environment, "{f}");
    }
    // Commas survive (two CIDRs, five dialects): never split into variables.
    let niobi = stack.function(&format!("{}-niobi", stack.name)).await;
    let env = niobi.environment().unwrap().variables().unwrap();
    assert_eq!(env["ALLOWED_SOURCE_IPS"], "10.0.0.0/8,192.168.1.7");
    assert_eq!(env["CANONICAL_DIALECTS"], "postman,javascript,jackson,compact,java");

    // A redeploy (the update path) gives the whole environment again, not what was changed.
    aws_sdk_lambda::Client::new(&stack.sdk)
        .update_function_configuration()
        .function_name(format!("{}-niobi", stack.name))
        .environment(aws_sdk_lambda::types::Environment::builder().variables("ONLY", "this").build())
        .send()
        .await
        .unwrap();
    stack.deploy_functions().await;
    let again = stack.function(&format!("{}-niobi", stack.name)).await;
    let want = template_says("niobi", &deployment);
    let env: BTreeMap<String, String> = again.environment().unwrap().variables().unwrap().clone().into_iter().collect();
    assert_eq!(env, want.environment);

    // Binaries of the other architecture are refused before anything is deployed.
    let (_, code, err) = stack.admin(&["deploy-config", "--arch", "arm64", "--out", "/tmp/unused"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("run x86_64 and the binaries are arm64") && err.contains("ARCH=x86_64"), "{err}");
}

#[tokio::test]
#[ignore = "needs moto_server and cargo-lambda: run with `make test`"]
async fn doctor_passes_a_sound_stack_and_names_everything_broken() {
    let stack = TestStack::create().await;
    stack.deploy_functions().await;
    let (out, code, err) = stack.admin(&["doctor"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("┆ check") && !out.contains("FAIL"), "a checklist, every line ok: {out}");
    assert!(!out.contains("token-new") && !out.contains("token-old"), "no secret printed: {out}");
    let checks = stack.doctor().await;
    for name in ["niobi queue", "muda secrets", "alarms"] {
        assert!(checks.contains_key(name), "{name}: {checks:?}");
    }
    assert!(checks.keys().any(|k| k.starts_with("sweeper function")), "{checks:?}");
    assert!(checks["muda secrets"].1.contains("2 secret(s) (a rotation in progress)"), "{checks:?}");

    // Break it four ways, as a deployment does go wrong.
    let ssm = aws_sdk_ssm::Client::new(&stack.sdk);
    ssm.delete_parameter().name(format!("/{}/muda", stack.name)).send().await.unwrap();
    ssm.put_parameter()
        .name(format!("/{}/lipia", stack.name))
        .value(" , ")
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let lambda = aws_sdk_lambda::Client::new(&stack.sdk);
    let niobi = format!("{}-niobi", stack.name);
    let mut env = stack.function(&niobi).await.environment().unwrap().variables().unwrap().clone();
    env.remove("CANONICAL_DIALECTS");
    lambda
        .update_function_configuration()
        .function_name(&niobi)
        .memory_size(128)
        .environment(aws_sdk_lambda::types::Environment::builder().set_variables(Some(env)).build())
        .send()
        .await
        .unwrap();
    stack.put_alarm("SweepFailedAlarm", false).await;

    let (out, code, _) = stack.admin(&["doctor"]).await;
    assert_eq!(code, 1, "{out}");
    let checks = stack.doctor().await;
    let failed: Vec<(&String, &String)> = checks.iter().filter(|(_, (ok, _))| !ok).map(|(k, (_, d))| (k, d)).collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    let detail = |what: &str| checks.iter().find(|(k, _)| k.starts_with(what)).map(|(_, (_, d))| d.clone()).unwrap();
    assert!(detail("muda secrets").contains("ParameterNotFound"), "{failed:?}");
    assert!(detail("lipia secrets").contains("no secret"), "{failed:?}");
    let niobi = detail("niobi function");
    assert!(niobi.contains("memory 128 MB (want 256)") && niobi.contains("CANONICAL_DIALECTS"), "{niobi}");
    assert!(detail("alarms").contains("SweepFailedAlarm"), "{failed:?}");
}

#[tokio::test]
#[ignore = "needs moto_server: run with `make test`"]
async fn urls_mask_tokens_unless_revealed_and_errors_carry_their_cause() {
    let stack = TestStack::create().await;
    let (out, code, err) = stack.admin(&["urls"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("https://example.execute-api.us-east-1.amazonaws.com/webhooks/niobi"), "{out}");
    assert!(out.contains("/webhooks/lipia/****") && out.contains("/webhooks/muda/****"), "{out}");
    assert!(!out.contains("token-new"), "{out}");
    assert!(out.contains(&format!("SSM parameter /{}/lipia", stack.name)), "{out}");

    let (out, _, _) = stack.admin(&["urls", "--reveal", "--json"]).await;
    let urls: serde_json::Value = serde_json::from_str(&out).unwrap();
    let lipia = urls.as_array().unwrap().iter().find(|u| u["provider"] == "lipia").unwrap();
    assert!(lipia["register"].as_str().unwrap().contains("Rotating it changes the URL"), "{lipia}");
    assert_eq!(lipia["url"], "https://example.execute-api.us-east-1.amazonaws.com/webhooks/lipia/lipia-token-new");

    // The whole cause of an AWS error, not "service error": a stack that does not exist, a table that does not.
    let (_, code, err) = TestStack { sdk: stack.sdk.clone(), name: "no-such-stack".into() }.admin(&["urls"]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot read stack no-such-stack")
            && err.contains("ValidationError: Stack with id no-such-stack does not exist"),
        "{err}"
    );
    let table = format!("{}-events", stack.name);
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .update_table()
        .table_name(&table)
        .deletion_protection_enabled(false)
        .send()
        .await
        .ok();
    aws_sdk_dynamodb::Client::new(&stack.sdk).delete_table().table_name(&table).send().await.unwrap();
    let (_, code, err) = stack.admin(&["inspect", "niobi:payin:X:000000"]).await;
    assert_eq!(code, 2);
    assert!(err.contains(&format!("cannot read niobi:payin:X:000000 from table {table}")), "{err}");
    assert!(err.contains("ResourceNotFoundException"), "{err}");
}
