"""The KT2 application-under-test suites (kt2-apps-portal, kt2-apps-module): steps over features/kt2/apps."""
