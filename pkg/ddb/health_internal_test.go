package ddb

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Each service's health check reads every table it is granted, with a read it is granted, by
// the table's whole key: a check outside the grants would fail on AWS only.
func TestHealthProbesStayInsideTheGrants(t *testing.T) {
	tables := TableNames("p_")
	keys := map[string][]string{}
	for _, sp := range tables.Specs() {
		for _, k := range sp.Create.KeySchema {
			keys[aws.ToString(sp.Create.TableName)] = append(keys[aws.ToString(sp.Create.TableName)], aws.ToString(k.AttributeName))
		}
	}
	for _, component := range []string{ComponentIngest, ComponentInbox, ComponentKeysAdmin} {
		probes, err := healthProbes(component, tables)
		if err != nil {
			t.Fatalf("%s: %v", component, err)
		}
		var probed, granted []string
		for _, g := range Access[component] {
			if g.Index == "" {
				granted = append(granted, tables.Name(g.Table))
			}
		}
		for _, p := range probes {
			probed = append(probed, p.table)
			action := map[bool]string{false: "GetItem", true: "BatchGetItem"}[p.batch]
			if !slices.ContainsFunc(Access[component], func(g Grant) bool {
				return g.Index == "" && tables.Name(g.Table) == p.table && slices.Contains(g.Actions, action)
			}) {
				t.Errorf("%s probes %s with %s, which it is not granted", component, p.table, action)
			}
			var attrs []string
			for a := range p.key {
				attrs = append(attrs, a)
			}
			slices.Sort(attrs)
			want := slices.Sorted(slices.Values(keys[p.table]))
			if !slices.Equal(attrs, want) {
				t.Errorf("%s: key of %s is %v, want %v", component, p.table, attrs, want)
			}
		}
		if !slices.Equal(probed, granted) {
			t.Errorf("%s probes %v, its grants name %v", component, probed, granted)
		}
	}
	if _, err := healthProbes(ComponentTables, tables); err == nil {
		t.Error("the tables job may not read, yet it got probes")
	}
	if _, err := healthProbes("nobody", tables); err == nil {
		t.Error("an unknown component got probes")
	}
}
