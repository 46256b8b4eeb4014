#!/bin/sh
# Regenerate the dev CPAs in this folder: the dev gemeente (00000099000003630000, https://localhost:8443/ebms)
# and the dev RINIS counterpart (00000099000001000000, https://localhost:8444/ebms), one CPA per
# Digikoppeling profile, with the dev PKI of certs/dev/. TEST MATERIAL: test OINs, committed keys.
# Run from the project root: sh cpa/regenerate-dev-cpas.sh   (see docs/cpa.md)
set -eu
GGK_EBMS=${GGK_EBMS:-ggk-ebms}
for profile in osb-rm osb-be osb-rm-s osb-be-s osb-rm-e osb-be-e; do
  "$GGK_EBMS" cpa create \
    --profile "$profile" \
    --profile-name "Gemeente dev - $profile" \
    --party-name "Gemeente (dev)" --party-oin 00000099000003630000 --party-role Gemeente \
    --party-endpoint https://localhost:8443/ebms \
    --party-server-cert certs/dev/gemeente/server.pem --party-client-cert certs/dev/gemeente/client.pem \
    --partner-name "RINIS (dev)" --partner-oin 00000099000001000000 --partner-role GGk \
    --partner-endpoint https://localhost:8444/ebms \
    --partner-server-cert certs/dev/rinis/server.pem --partner-client-cert certs/dev/rinis/client.pem \
    --start 2026-01-01 \
    --cpa-version "$profile-1" \
    -o "cpa/dev-$profile.xml"
done
