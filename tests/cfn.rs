//! Just enough CloudFormation to check `template.yaml` offline: YAML with short tags (`!Ref`, `!Sub`, `!GetAtt`,
//! `!If`, ...) becomes the JSON form (`{"Ref": ..}`, `{"Fn::Sub": ..}`), and [`Template::eval`] resolves
//! intrinsics against the parameters' defaults (or overrides), the conditions and fixed pseudo parameters, so a
//! check can compare the strings a deploy would produce. Resources that CloudFormation names are replaced by
//! placeholders such as `<IngestFailureQueue.Arn>`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::{Map, Value as J, json};
use serde_yaml_ng::Value as Y;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "eu-west-3";
pub const PARTITION: &str = "aws";
const NO_VALUE: &str = "\u{0}AWS::NoValue";

/// The repository's `template.yaml`, as text.
pub fn template_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// A file of the repository, relative to its root.
pub fn repo_file(relative: &str) -> String {
    let path = format!("{}/../{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub fn repo_path_exists(relative: &str) -> bool {
    std::path::Path::new(&format!("{}/../{relative}", env!("CARGO_MANIFEST_DIR"))).exists()
}

/// YAML (with CloudFormation short tags) to CloudFormation's JSON form.
pub fn to_json(v: &Y) -> J {
    match v {
        Y::Null => J::Null,
        Y::Bool(b) => J::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64().expect("a YAML number"))
            }
        }
        Y::String(s) => J::String(s.clone()),
        Y::Sequence(items) => J::Array(items.iter().map(to_json).collect()),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => panic!("unsupported mapping key {other:?}"),
                };
                out.insert(key, to_json(v));
            }
            J::Object(out)
        }
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(&t.value);
            match name {
                "Ref" => json!({ "Ref": inner }),
                "Condition" => json!({ "Condition": inner }),
                "GetAtt" => match inner {
                    J::String(s) => {
                        let (res, attr) = s.split_once('.').unwrap_or_else(|| panic!("!GetAtt {s}: no attribute"));
                        json!({ "Fn::GetAtt": [res, attr] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                "Sub" | "If" | "Equals" | "Not" | "And" | "Or" | "Join" | "Select" | "Split" | "FindInMap"
                | "Base64" | "Cidr" | "GetAZs" | "ImportValue" | "Transform" | "Length" | "ToJsonString" => {
                    json!({ format!("Fn::{name}"): inner })
                }
                other => panic!("unknown CloudFormation tag !{other}"),
            }
        }
    }
}

pub struct Template {
    pub doc: J,
    overrides: BTreeMap<String, J>,
}

impl Template {
    pub fn load() -> Template {
        Template::parse(&template_text())
    }

    pub fn parse(text: &str) -> Template {
        let y: Y = serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("template.yaml: {e}"));
        Template { doc: to_json(&y), overrides: BTreeMap::new() }
    }

    /// The same template deployed with `name=value` instead of the parameter's default.
    pub fn with_param(mut self, name: &str, value: J) -> Template {
        assert!(self.doc["Parameters"].get(name).is_some(), "no parameter {name}");
        self.overrides.insert(name.to_string(), value);
        self
    }

    pub fn resources(&self) -> &Map<String, J> {
        self.doc["Resources"].as_object().expect("Resources")
    }

    pub fn resource(&self, id: &str) -> &J {
        self.resources().get(id).unwrap_or_else(|| panic!("no resource {id}"))
    }

    pub fn props(&self, id: &str) -> &J {
        &self.resource(id)["Properties"]
    }

    pub fn of_type(&self, ty: &str) -> Vec<(&str, &J)> {
        self.resources().iter().filter(|(_, r)| r["Type"] == ty).map(|(k, r)| (k.as_str(), r)).collect()
    }

    pub fn param(&self, name: &str) -> &J {
        self.doc["Parameters"].get(name).unwrap_or_else(|| panic!("no parameter {name}"))
    }

    /// The value a parameter has in this deploy: its override, else its default.
    pub fn param_value(&self, name: &str) -> J {
        if let Some(v) = self.overrides.get(name) {
            return v.clone();
        }
        self.param(name).get("Default").cloned().unwrap_or_else(|| panic!("parameter {name} has no default"))
    }

    pub fn condition(&self, name: &str) -> bool {
        let c = self.doc["Conditions"].get(name).unwrap_or_else(|| panic!("no condition {name}")).clone();
        self.eval_condition(&c)
    }

    fn eval_condition(&self, c: &J) -> bool {
        let obj = c.as_object().unwrap_or_else(|| panic!("condition {c}"));
        let (k, v) = obj.iter().next().expect("condition function");
        match k.as_str() {
            "Fn::Equals" => {
                let a = scalar_text(&self.eval(&v[0]));
                let b = scalar_text(&self.eval(&v[1]));
                a == b
            }
            "Fn::Not" => !self.eval_condition(&v[0]),
            "Fn::And" => v.as_array().unwrap().iter().all(|c| self.eval_condition(c)),
            "Fn::Or" => v.as_array().unwrap().iter().any(|c| self.eval_condition(c)),
            "Condition" => self.condition(v.as_str().unwrap()),
            other => panic!("unsupported condition function {other}"),
        }
    }

    /// Whether a resource exists in this deploy (its `Condition`, if any, holds).
    pub fn is_created(&self, id: &str) -> bool {
        match self.resource(id).get("Condition").and_then(J::as_str) {
            Some(c) => self.condition(c),
            None => true,
        }
    }

    fn ref_value(&self, name: &str) -> J {
        match name {
            "AWS::AccountId" => return json!(ACCOUNT),
            "AWS::Region" => return json!(REGION),
            "AWS::Partition" => return json!(PARTITION),
            "AWS::StackName" => return json!("salesflow-test"),
            "AWS::URLSuffix" => return json!("amazonaws.com"),
            "AWS::NoValue" => return json!(NO_VALUE),
            _ => {}
        }
        if self.doc["Parameters"].get(name).is_some() {
            return self.param_value(name);
        }
        let r = self.resource(name);
        let p = &r["Properties"];
        let named = match r["Type"].as_str().unwrap_or_default() {
            "AWS::S3::Bucket" => p.get("BucketName"),
            "AWS::Kinesis::Stream" => p.get("Name"),
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => p.get("FunctionName"),
            "AWS::Logs::LogGroup" => p.get("LogGroupName"),
            _ => None,
        };
        match named {
            Some(n) => self.eval(n),
            None => json!(format!("<{name}>")),
        }
    }

    fn get_att(&self, res: &str, attr: &str) -> J {
        let r = self.resource(res);
        if r["Type"] == "AWS::S3::Bucket" && attr == "Arn" {
            return json!(format!("arn:{PARTITION}:s3:::{}", scalar_text(&self.ref_value(res))));
        }
        json!(format!("<{res}.{attr}>"))
    }

    fn sub(&self, template: &str, vars: &Map<String, J>) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').unwrap_or_else(|| panic!("unclosed ${{ in {template}"));
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(&scalar_text(&self.eval(v)));
            } else if let Some((res, attr)) = name.split_once('.').filter(|(r, _)| !r.starts_with("AWS:")) {
                out.push_str(&scalar_text(&self.get_att(res, attr)));
            } else {
                out.push_str(&scalar_text(&self.ref_value(name)));
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Resolves every intrinsic function it knows in `v`; `AWS::NoValue` removes the key or item.
    pub fn eval(&self, v: &J) -> J {
        match v {
            J::Array(items) => J::Array(items.iter().map(|i| self.eval(i)).filter(|i| !is_no_value(i)).collect()),
            J::Object(obj) if obj.len() == 1 => {
                let (k, arg) = obj.iter().next().unwrap();
                match k.as_str() {
                    "Ref" => self.ref_value(arg.as_str().expect("Ref of a name")),
                    "Fn::GetAtt" => self.get_att(arg[0].as_str().unwrap(), arg[1].as_str().unwrap()),
                    "Fn::Sub" => match arg {
                        J::String(s) => json!(self.sub(s, &Map::new())),
                        J::Array(a) => {
                            json!(self.sub(a[0].as_str().unwrap(), a[1].as_object().unwrap()))
                        }
                        other => panic!("Fn::Sub {other}"),
                    },
                    "Fn::If" => {
                        let branch = if self.condition(arg[0].as_str().unwrap()) { &arg[1] } else { &arg[2] };
                        self.eval(branch)
                    }
                    "Fn::Join" => {
                        let sep = arg[0].as_str().unwrap();
                        let parts: Vec<String> =
                            self.eval(&arg[1]).as_array().unwrap().iter().map(scalar_text).collect();
                        json!(parts.join(sep))
                    }
                    _ => self.eval_object(obj),
                }
            }
            J::Object(obj) => self.eval_object(obj),
            other => other.clone(),
        }
    }

    fn eval_object(&self, obj: &Map<String, J>) -> J {
        let mut out = Map::new();
        for (k, v) in obj {
            let v = self.eval(v);
            if !is_no_value(&v) {
                out.insert(k.clone(), v);
            }
        }
        J::Object(out)
    }

    /// The name the template gives the data bucket, resolved.
    pub fn bucket_name(&self) -> String {
        scalar_text(&self.eval(&self.props("DataBucket")["BucketName"]))
    }

    /// Every Allow statement of an `AWS::IAM::Role`'s inline policies, one grant per (action, resource), resolved.
    /// A role with managed policies, `NotAction`/`NotResource`, or a `Deny` is reported as a problem.
    pub fn role_grants(&self, role: &str, problems: &mut Vec<String>) -> Vec<Grant> {
        let r = self.resource(role);
        if r["Type"] != "AWS::IAM::Role" {
            problems.push(format!("{role}: is {}, not an AWS::IAM::Role", r["Type"]));
            return vec![];
        }
        let p = self.eval(&r["Properties"]);
        if p.get("ManagedPolicyArns").is_some_and(|m| !m.as_array().is_some_and(Vec::is_empty)) {
            problems.push(format!(
                "{role}: has managed policies {} (their resources are not ours to scope)",
                p["ManagedPolicyArns"]
            ));
        }
        if p.get("PermissionsBoundary").is_some() {
            problems.push(format!("{role}: unexpected PermissionsBoundary"));
        }
        let mut grants = Vec::new();
        for policy in p["Policies"].as_array().cloned().unwrap_or_default() {
            grants.extend(policy_grants(role, &policy["PolicyDocument"], problems));
        }
        grants
    }
}

/// Every Allow statement of a resolved IAM policy document, one grant per (action, resource); `NotAction`,
/// `NotResource`, `NotPrincipal` and `Deny` statements are reported as problems of `owner`.
pub fn policy_grants(owner: &str, document: &J, problems: &mut Vec<String>) -> Vec<Grant> {
    let mut grants = Vec::new();
    for st in as_list(&document["Statement"]) {
        let sid = st.get("Sid").and_then(J::as_str).unwrap_or("?").to_string();
        for forbidden in ["NotAction", "NotResource", "NotPrincipal"] {
            if st.get(forbidden).is_some() {
                problems.push(format!("{owner}.{sid}: uses {forbidden}"));
            }
        }
        if st["Effect"] != "Allow" {
            problems.push(format!("{owner}.{sid}: Effect {} (only Allow expected)", st["Effect"]));
            continue;
        }
        for action in as_list(&st["Action"]) {
            for resource in as_list(&st["Resource"]) {
                grants.push(Grant {
                    sid: sid.clone(),
                    action: scalar_text(&action),
                    resource: scalar_text(&resource),
                    condition: st.get("Condition").cloned().unwrap_or(J::Null),
                });
            }
        }
    }
    grants
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub sid: String,
    pub action: String,
    pub resource: String,
    pub condition: J,
}

fn is_no_value(v: &J) -> bool {
    v.as_str() == Some(NO_VALUE)
}

/// A scalar as CloudFormation would pass it on: strings as they are, numbers and booleans as their text.
pub fn scalar_text(v: &J) -> String {
    match v {
        J::String(s) => s.clone(),
        J::Number(n) => n.to_string(),
        J::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, got {other}"),
    }
}

/// A value that may be one item or a list of them, as a list (IAM's `Action`, `Resource`, `Statement`).
pub fn as_list(v: &J) -> Vec<J> {
    match v {
        J::Array(items) => items.clone(),
        J::Null => vec![],
        other => vec![other.clone()],
    }
}

/// An integer from a number or a numeric string (CloudFormation parameters are strings once resolved).
pub fn as_int(v: &J) -> Option<i64> {
    match v {
        J::Number(n) => n.as_i64(),
        J::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// An S3 notification filter (prefix and suffix rules) and what it triggers on, as S3 applies it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct S3KeyFilter {
    pub prefix: String,
    pub suffix: String,
}

impl S3KeyFilter {
    pub fn from_rules(rules: &J, problems: &mut Vec<String>) -> S3KeyFilter {
        let mut f = S3KeyFilter::default();
        for rule in as_list(rules) {
            let name = rule["Name"].as_str().unwrap_or_default().to_ascii_lowercase();
            let value = rule["Value"].as_str().unwrap_or_default().to_string();
            match name.as_str() {
                "prefix" => f.prefix = value,
                "suffix" => f.suffix = value,
                other => problems.push(format!("unknown S3 filter rule name {other:?}")),
            }
        }
        f
    }

    pub fn matches(&self, key: &str) -> bool {
        key.starts_with(&self.prefix) && key.ends_with(&self.suffix)
    }

    /// Whether some key under `write_prefix` (any name: IAM lets the writer choose it) can match this filter.
    /// Two prefixes overlap when one starts with the other; a suffix rule cannot help, the writer picks the suffix.
    pub fn can_match_under(&self, write_prefix: &str) -> bool {
        self.prefix.starts_with(write_prefix) || write_prefix.starts_with(&self.prefix)
    }
}
