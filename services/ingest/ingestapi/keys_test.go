package ingestapi_test

import "github.com/trigger-api/trigger-api/pkg/apikey"

func apikeyNew(tenantID string) (string, error) {
	k, err := apikey.New(tenantID)
	return k.String(), err
}
