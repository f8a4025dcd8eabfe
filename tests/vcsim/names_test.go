package main

import "testing"

func TestEntityNamesAreEscapedAsVCenterDoesAndDecodeBack(t *testing.T) {
	for _, name := range []string{goldenClusterName, goldenVMName, goldenSnapshotName, "plain", "%2f literal"} {
		wire := escapeEntityName(name)
		if got := decodeEntityName(wire); got != name {
			t.Errorf("%q: escaped %q decodes to %q", name, wire, got)
		}
	}
	if got := escapeEntityName(`a/b\c 50%`); got != `a%2fb%5cc 50%25` {
		t.Errorf("escaped %q", got)
	}
	if got := decodeEntityName("A%2FB%5C%zz%"); got != `A/B\%zz%` {
		t.Errorf("decoded %q", got)
	}
}
