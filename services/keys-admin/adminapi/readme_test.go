package adminapi_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/pkg/config/configtest"
	"github.com/trigger-api/trigger-api/services/keys-admin/adminapi"
)

func TestReadmeListsSettings(t *testing.T) {
	configtest.CheckDocs(t, "keys-admin", &adminapi.Config{})
	configtest.CheckDocs(t, "keys-admin ensure-tables", &adminapi.TablesConfig{})
}
