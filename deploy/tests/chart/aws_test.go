package k8stest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.yaml.in/yaml/v3"

	"github.com/trigger-api/trigger-api/pkg/ddb"
)

const cfnTemplate = "deploy/aws/trigger-api.yaml"

// loadCloudFormation parses a CloudFormation YAML template into plain Go values, turning the
// short intrinsic tags (!Ref, !Sub, !GetAtt) into their long JSON forms so the rest of the test
// reads one shape. Any other tag fails: the test would not know what it means.
func loadCloudFormation(t *testing.T) map[string]any {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(readFile(t, cfnTemplate), &doc); err != nil {
		t.Fatalf("parse %s: %v", cfnTemplate, err)
	}
	v, err := cfnValue(doc.Content[0])
	if err != nil {
		t.Fatalf("%s: %v", cfnTemplate, err)
	}
	return v.(map[string]any)
}

func cfnValue(n *yaml.Node) (any, error) {
	switch n.Tag {
	case "!Ref":
		return map[string]any{"Ref": n.Value}, nil
	case "!Sub":
		if n.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: only the one-argument !Sub is supported", n.Line)
		}
		return map[string]any{"Fn::Sub": n.Value}, nil
	case "!GetAtt":
		res, attr, ok := strings.Cut(n.Value, ".")
		if !ok {
			return nil, fmt.Errorf("line %d: !GetAtt %q", n.Line, n.Value)
		}
		return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return nil, fmt.Errorf("line %d: unsupported tag %s", n.Line, n.Tag)
	}
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i < len(n.Content); i += 2 {
			v, err := cfnValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			if _, dup := out[n.Content[i].Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %s", n.Content[i].Line, n.Content[i].Value)
			}
			out[n.Content[i].Value] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			v, err := cfnValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// cfn is the parsed template with the lookups the assertions need.
type cfn struct {
	t         *testing.T
	resources map[string]map[string]any
	params    map[string]string // parameter defaults
}

func newCFN(t *testing.T) *cfn {
	doc := loadCloudFormation(t)
	c := &cfn{t: t, resources: map[string]map[string]any{}, params: map[string]string{}}
	for id, r := range doc["Resources"].(map[string]any) {
		c.resources[id] = r.(map[string]any)
	}
	for id, p := range doc["Parameters"].(map[string]any) {
		if d, ok := p.(map[string]any)["Default"]; ok {
			c.params[id] = fmt.Sprint(d)
		}
	}
	return c
}

func (c *cfn) ofType(typ string) []string {
	var ids []string
	for id, r := range c.resources {
		if r["Type"] == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func props(r map[string]any) map[string]any { return r["Properties"].(map[string]any) }

var subRef = regexp.MustCompile(`\$\{([A-Za-z0-9:.]+)\}`)

// sub evaluates a !Sub string with the parameters' defaults and fixed pseudo parameters;
// ${Resource.Arn} stays as it is for the caller to interpret.
func (c *cfn) sub(s string) string {
	pseudo := map[string]string{"AWS::Partition": "aws", "AWS::AccountId": "123456789012", "AWS::Region": "eu-west-1"}
	return subRef.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if v, ok := c.params[name]; ok {
			return v
		}
		if v, ok := pseudo[name]; ok {
			return v
		}
		if _, ok := c.resources[strings.TrimSuffix(name, ".Arn")]; ok && strings.HasSuffix(name, ".Arn") {
			return m
		}
		c.t.Errorf("!Sub %q names unknown %s", s, name)
		return m
	})
}

func (c *cfn) tableName(id string) string {
	r, ok := c.resources[id]
	if !ok || r["Type"] != "AWS::DynamoDB::Table" {
		c.t.Fatalf("%s is not a table of the template", id)
	}
	switch n := props(r)["TableName"].(type) {
	case string:
		return n
	case map[string]any:
		return c.sub(n["Fn::Sub"].(string))
	}
	c.t.Fatalf("%s: TableName %v", id, props(r)["TableName"])
	return ""
}

var indexArn = regexp.MustCompile(`^\$\{([A-Za-z0-9]+)\.Arn\}/index/([A-Za-z0-9_.-]+)$`)

// resource turns a policy Resource into (table name, index name).
func (c *cfn) resource(v any) (string, string) {
	m, ok := v.(map[string]any)
	if !ok {
		c.t.Fatalf("policy resource %v: want !GetAtt <Table>.Arn or !Sub ${<Table>.Arn}/index/<name>", v)
	}
	if ga, ok := m["Fn::GetAtt"].([]any); ok && len(ga) == 2 && ga[1] == "Arn" {
		return c.tableName(ga[0].(string)), ""
	}
	if s, ok := m["Fn::Sub"].(string); ok {
		if g := indexArn.FindStringSubmatch(s); g != nil {
			return c.tableName(g[1]), g[2]
		}
	}
	c.t.Fatalf("policy resource %v names no table or index", v)
	return "", ""
}

func TestCloudFormationTablesMatchCode(t *testing.T) {
	c := newCFN(t)
	if c.params["TablePrefix"] != "" {
		t.Fatalf("TablePrefix defaults to %q; the comparison assumes no prefix", c.params["TablePrefix"])
	}
	specs := ddb.TableNames("").Specs()
	tables := c.ofType("AWS::DynamoDB::Table")
	if len(tables) != len(specs) {
		t.Errorf("template has %d tables, code defines %d", len(tables), len(specs))
	}
	byName := map[string]string{}
	for _, id := range tables {
		byName[c.tableName(id)] = id
	}
	for _, spec := range specs {
		want := spec.Create
		name := aws.ToString(want.TableName)
		t.Run(name, func(t *testing.T) {
			id, ok := byName[name]
			if !ok {
				t.Fatalf("no table named %s in the template", name)
			}
			r := c.resources[id]
			p := props(r)
			if r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain" {
				t.Error("a stack change must never delete the data: want DeletionPolicy and UpdateReplacePolicy Retain")
			}
			if p["BillingMode"] != string(want.BillingMode) {
				t.Errorf("BillingMode %v, code %s", p["BillingMode"], want.BillingMode)
			}
			wantAttrs := map[string]string{}
			for _, a := range want.AttributeDefinitions {
				wantAttrs[aws.ToString(a.AttributeName)] = string(a.AttributeType)
			}
			gotAttrs := map[string]string{}
			for _, a := range p["AttributeDefinitions"].([]any) {
				a := a.(map[string]any)
				gotAttrs[a["AttributeName"].(string)] = a["AttributeType"].(string)
			}
			if !equalMaps(gotAttrs, wantAttrs) {
				t.Errorf("AttributeDefinitions %v, code %v", gotAttrs, wantAttrs)
			}
			if got, w := keySchema(p["KeySchema"]), codeKeySchema(want.KeySchema); !slices.Equal(got, w) {
				t.Errorf("KeySchema %v, code %v", got, w)
			}

			gotGSI := map[string]any{}
			if list, ok := p["GlobalSecondaryIndexes"].([]any); ok {
				for _, g := range list {
					g := g.(map[string]any)
					gotGSI[g["IndexName"].(string)] = g
				}
			}
			if len(gotGSI) != len(want.GlobalSecondaryIndexes) {
				t.Errorf("indexes %v, code has %d", keysOf(gotGSI), len(want.GlobalSecondaryIndexes))
			}
			for _, wg := range want.GlobalSecondaryIndexes {
				iname := aws.ToString(wg.IndexName)
				g, ok := gotGSI[iname].(map[string]any)
				if !ok {
					t.Errorf("index %s missing", iname)
					continue
				}
				if got, w := keySchema(g["KeySchema"]), codeKeySchema(wg.KeySchema); !slices.Equal(got, w) {
					t.Errorf("index %s KeySchema %v, code %v", iname, got, w)
				}
				proj := g["Projection"].(map[string]any)
				if proj["ProjectionType"] != string(wg.Projection.ProjectionType) {
					t.Errorf("index %s projection %v, code %s", iname, proj["ProjectionType"], wg.Projection.ProjectionType)
				}
				var gotNK []string
				if nk, ok := proj["NonKeyAttributes"].([]any); ok {
					for _, a := range nk {
						gotNK = append(gotNK, a.(string))
					}
				}
				wantNK := slices.Clone(wg.Projection.NonKeyAttributes)
				slices.Sort(gotNK)
				slices.Sort(wantNK)
				if !slices.Equal(gotNK, wantNK) {
					t.Errorf("index %s NonKeyAttributes %v, code %v", iname, gotNK, wantNK)
				}
			}

			ttl, hasTTL := p["TimeToLiveSpecification"].(map[string]any)
			switch {
			case spec.TTLAttribute == "" && hasTTL:
				t.Errorf("TTL on %v, the code has none", ttl["AttributeName"])
			case spec.TTLAttribute != "" && (!hasTTL || ttl["AttributeName"] != spec.TTLAttribute || ttl["Enabled"] != true):
				t.Errorf("TTL %v, code expires on %s", ttl, spec.TTLAttribute)
			}

			if pitr, _ := p["PointInTimeRecoverySpecification"].(map[string]any); pitr["PointInTimeRecoveryEnabled"] != true {
				t.Error("point-in-time recovery is off")
			}
			if sse, _ := p["SSESpecification"].(map[string]any); sse["SSEEnabled"] != true {
				t.Error("SSE with a KMS key is off")
			}
		})
	}
}

func keySchema(v any) []string {
	var out []string
	for _, k := range v.([]any) {
		k := k.(map[string]any)
		out = append(out, k["AttributeName"].(string)+" "+k["KeyType"].(string))
	}
	return out
}

func codeKeySchema(ks []types.KeySchemaElement) []string {
	var out []string
	for _, k := range ks {
		out = append(out, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// logicalID is the logical id convention of the template: keys-admin -> KeysAdminPolicy.
func logicalID(component, suffix string) string {
	var b strings.Builder
	for _, part := range strings.Split(component, "-") {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String() + suffix
}

// TestCloudFormationPoliciesMatchAccess: each component's policy allows exactly the actions on
// exactly the tables and indexes ddb.Access grants it, nothing more and nothing less.
func TestCloudFormationPoliciesMatchAccess(t *testing.T) {
	c := newCFN(t)
	policies := c.ofType("AWS::IAM::ManagedPolicy")
	if len(policies) != len(ddb.Access) {
		t.Errorf("template has policies %v, code grants %d components", policies, len(ddb.Access))
	}
	for component, grants := range ddb.Access {
		t.Run(component, func(t *testing.T) {
			want := map[string]bool{}
			for _, g := range grants {
				for _, a := range g.Actions {
					want[fmt.Sprintf("dynamodb:%s on %s%s", a, g.Table, indexSuffix(g.Index))] = true
				}
			}
			id := logicalID(component, "Policy")
			r, ok := c.resources[id]
			if !ok {
				t.Fatalf("no policy %s", id)
			}
			doc := props(r)["PolicyDocument"].(map[string]any)
			got := map[string]bool{}
			for _, s := range doc["Statement"].([]any) {
				s := s.(map[string]any)
				if s["Effect"] != "Allow" || s["Condition"] != nil || s["NotAction"] != nil || s["NotResource"] != nil {
					t.Errorf("statement %v: want a plain Allow", s["Sid"])
				}
				resources, ok := s["Resource"].([]any)
				if !ok {
					resources = []any{s["Resource"]}
				}
				for _, res := range resources {
					table, index := c.resource(res)
					for _, a := range s["Action"].([]any) {
						action := a.(string)
						if strings.Contains(action, "*") {
							t.Errorf("wildcard action %s", action)
						}
						got[fmt.Sprintf("%s on %s%s", action, table, indexSuffix(index))] = true
					}
				}
			}
			for g := range got {
				if !want[g] {
					t.Errorf("policy allows %s, which the code does not need", g)
				}
			}
			for w := range want {
				if !got[w] {
					t.Errorf("policy lacks %s, which the code calls", w)
				}
			}
		})
	}
}

func indexSuffix(index string) string {
	if index == "" {
		return ""
	}
	return "/index/" + index
}

// TestCloudFormationRolesTrustTheChartsServiceAccounts: each role carries its component's policy
// and only that component's ServiceAccount, named as the chart names it, can assume it.
func TestCloudFormationRolesTrustTheChartsServiceAccounts(t *testing.T) {
	c := newCFN(t)
	roles := c.ofType("AWS::IAM::Role")
	if len(roles) != len(ddb.Access) {
		t.Errorf("template has roles %v, want one per component of ddb.Access", roles)
	}
	// The README installs release trigger-api into namespace trigger-api, which the parameter
	// defaults assume; the IRSA value set has a role on every component, tables Job included.
	// OIDCProvider has no default: any issuer of the allowed shape stands in for the cluster's.
	const provider = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B716D3041E"
	c.params["OIDCProvider"] = provider
	vs := valueSet{file: chartDir + "/ci/irsa-tables-job-values.yaml"}
	m := render(t, c.params["ServiceAccountPrefix"], c.params["Namespace"], vs.values(t))
	for component := range ddb.Access {
		t.Run(component, func(t *testing.T) {
			r, ok := c.resources[logicalID(component, "Role")]
			if !ok {
				t.Fatalf("no role %s", logicalID(component, "Role"))
			}
			p := props(r)
			arns, _ := p["ManagedPolicyArns"].([]any)
			if len(arns) != 1 || fmt.Sprint(arns[0]) != fmt.Sprint(map[string]any{"Ref": logicalID(component, "Policy")}) {
				t.Errorf("ManagedPolicyArns %v, want only %s", arns, logicalID(component, "Policy"))
			}
			if p["Policies"] != nil {
				t.Error("inline policies bypass the per-component policy")
			}
			w, ok := m.workload(component)
			if !ok {
				t.Fatalf("the chart renders no %s workload", component)
			}
			sa := fmt.Sprintf("system:serviceaccount:%s:%s", m.namespace, w.pod.Spec.ServiceAccountName)

			subDoc, ok := p["AssumeRolePolicyDocument"].(map[string]any)["Fn::Sub"].(string)
			if !ok {
				t.Fatal("AssumeRolePolicyDocument is not a !Sub string")
			}
			var trust struct {
				Statement []struct {
					Effect    string
					Principal map[string]string
					Action    string
					Condition map[string]map[string]string
				}
			}
			if err := json.Unmarshal([]byte(c.sub(subDoc)), &trust); err != nil {
				t.Fatalf("trust policy is not JSON: %v", err)
			}
			if len(trust.Statement) != 1 {
				t.Fatalf("%d trust statements, want 1", len(trust.Statement))
			}
			st := trust.Statement[0]
			if st.Effect != "Allow" || st.Action != "sts:AssumeRoleWithWebIdentity" ||
				!strings.HasSuffix(st.Principal["Federated"], ":oidc-provider/"+provider) {
				t.Errorf("trust statement %+v: want web identity through the cluster's OIDC provider", st)
			}
			eq := st.Condition["StringEquals"]
			if eq[provider+":sub"] != sa || eq[provider+":aud"] != "sts.amazonaws.com" || len(st.Condition) != 1 {
				t.Errorf("trust condition %v, want sub %s and aud sts.amazonaws.com", st.Condition, sa)
			}
		})
	}
}
