"""Steps of the KT1.3 application-under-test suites (kt1-apps-portal, kt1-apps-module): the bench plays the
server and the counter-role, the vendor's portal or module is the target."""
