package org.fhirguard.hapi;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

/**
 * The whole configuration of the example server, read once from the environment at start.
 * Nothing else (no application.yaml, no system properties) changes what the server does, so a
 * tier's environment in fhirguard's policy says everything about it.
 *
 * <pre>
 * FHIRGUARD_HAPI_JDBC_URL            jdbc:postgresql://127.0.0.1:5432/fhir  (required)
 * FHIRGUARD_HAPI_DB_USER             database role                           (required)
 * FHIRGUARD_HAPI_DB_PASSWORD         its password, or
 * FHIRGUARD_HAPI_DB_PASSWORD_FILE    a file holding it (first line; wins over the variable)
 * FHIRGUARD_HAPI_LISTEN              127.0.0.1:8090 (default), or unix:/path/to/hapi.sock
 * FHIRGUARD_HAPI_BASE_PATH           /fhir (default)
 * FHIRGUARD_HAPI_READ_ONLY           false (default) | true: a read instance
 * FHIRGUARD_HAPI_READ_ONLY_GUARD     defaults to READ_ONLY: refuse writes in HAPI before they
 *                                    reach the database (false leaves it to the database role)
 * FHIRGUARD_HAPI_SCHEMA              update (default when writable) | none (default when read
 *                                    only) | validate: Hibernate's schema action at start
 * FHIRGUARD_HAPI_DB_POOL             maximum database connections (default 10)
 * FHIRGUARD_HAPI_FORWARDED           false (default) | true: URLs from X-Forwarded-Proto/Host/Prefix
 *                                    (behind fhirguard, which sets them; ForwardedAddressStrategy)
 * FHIRGUARD_HAPI_GRANT_READ_ROLE     a write instance grants this role its read privileges once
 *                                    its schema is up to date (ReadRoleGrants); default none
 * </pre>
 */
public record Settings(
		String jdbcUrl,
		String dbUser,
		String dbPassword,
		String listenHost,
		int listenPort,
		String unixSocket,
		String basePath,
		boolean readOnly,
		boolean readOnlyGuard,
		String schemaAction,
		int dbPool,
		boolean forwarded,
		String grantReadRole) {

	static final String PREFIX = "FHIRGUARD_HAPI_";

	public static Settings fromEnvironment(Map<String, String> env) {
		String jdbcUrl = required(env, "JDBC_URL");
		if (!jdbcUrl.startsWith("jdbc:postgresql:")) {
			throw new IllegalArgumentException(PREFIX + "JDBC_URL must be a jdbc:postgresql: URL");
		}
		String user = required(env, "DB_USER");
		String password = get(env, "DB_PASSWORD", "");
		String passwordFile = get(env, "DB_PASSWORD_FILE", "");
		if (!passwordFile.isEmpty()) {
			try {
				String text = Files.readString(Path.of(passwordFile), StandardCharsets.UTF_8);
				int eol = text.indexOf('\n');
				password = eol >= 0 ? text.substring(0, eol) : text;
			} catch (IOException e) {
				throw new IllegalArgumentException(PREFIX + "DB_PASSWORD_FILE: cannot read " + passwordFile, e);
			}
		}

		String listen = get(env, "LISTEN", "127.0.0.1:8090");
		String host = null;
		int port = 0;
		String socket = null;
		if (listen.startsWith("unix:")) {
			socket = listen.substring("unix:".length());
			if (!socket.startsWith("/")) {
				throw new IllegalArgumentException(PREFIX + "LISTEN: unix: needs an absolute path");
			}
		} else {
			int colon = listen.lastIndexOf(':');
			if (colon <= 0) {
				throw new IllegalArgumentException(PREFIX + "LISTEN must be HOST:PORT or unix:/path");
			}
			host = listen.substring(0, colon);
			port = parseInt(listen.substring(colon + 1), "LISTEN port", 1, 65535);
		}

		String basePath = get(env, "BASE_PATH", "/fhir");
		if (!basePath.matches("/[A-Za-z0-9._~\\-/]*")) {
			throw new IllegalArgumentException(PREFIX + "BASE_PATH must be an absolute URL path");
		}
		basePath = basePath.replaceAll("/+$", "");

		boolean readOnly = parseBool(get(env, "READ_ONLY", "false"), "READ_ONLY");
		boolean guard = parseBool(get(env, "READ_ONLY_GUARD", Boolean.toString(readOnly)), "READ_ONLY_GUARD");
		String schema = get(env, "SCHEMA", readOnly ? "none" : "update").toLowerCase(Locale.ROOT);
		if (!schema.equals("update") && !schema.equals("none") && !schema.equals("validate")) {
			throw new IllegalArgumentException(PREFIX + "SCHEMA must be update, none or validate");
		}
		if (readOnly && schema.equals("update")) {
			throw new IllegalArgumentException(PREFIX + "SCHEMA=update makes no sense with READ_ONLY=true");
		}
		int pool = parseInt(get(env, "DB_POOL", "10"), "DB_POOL", 1, 200);
		boolean forwarded = parseBool(get(env, "FORWARDED", "false"), "FORWARDED");
		String grantReadRole = get(env, "GRANT_READ_ROLE", "");
		if (!grantReadRole.isEmpty() && !grantReadRole.matches("[a-z_][a-z0-9_]{0,62}")) {
			throw new IllegalArgumentException(PREFIX + "GRANT_READ_ROLE must be a plain role name");
		}
		if (!grantReadRole.isEmpty() && readOnly) {
			throw new IllegalArgumentException(PREFIX + "GRANT_READ_ROLE is for the write instance (the schema's owner)");
		}
		return new Settings(jdbcUrl, user, password, host, port, socket, basePath, readOnly, guard, schema, pool, forwarded,
				grantReadRole.isEmpty() ? null : grantReadRole);
	}

	/** What the log says at start: everything but the password. */
	public String describe() {
		String where = unixSocket != null ? "unix:" + unixSocket : listenHost + ":" + listenPort;
		return "listen=" + where + " base=" + (basePath.isEmpty() ? "/" : basePath) + " db=" + jdbcUrl + " user="
				+ dbUser + " readOnly=" + readOnly + " guard=" + readOnlyGuard + " schema=" + schemaAction
				+ " pool=" + dbPool + " forwarded=" + forwarded + (grantReadRole != null ? " grantReadRole=" + grantReadRole : "");
	}

	private static String get(Map<String, String> env, String name, String dflt) {
		String v = env.get(PREFIX + name);
		return v == null || v.isEmpty() ? dflt : v.trim();
	}

	private static String required(Map<String, String> env, String name) {
		String v = get(env, name, "");
		if (v.isEmpty()) {
			throw new IllegalArgumentException(PREFIX + name + " is required");
		}
		return v;
	}

	private static boolean parseBool(String v, String name) {
		return switch (v.toLowerCase(Locale.ROOT)) {
			case "1", "true", "yes", "on" -> true;
			case "0", "false", "no", "off" -> false;
			default -> throw new IllegalArgumentException(PREFIX + name + " must be true or false");
		};
	}

	private static int parseInt(String v, String name, int min, int max) {
		try {
			int n = Integer.parseInt(v);
			if (n < min || n > max) {
				throw new NumberFormatException();
			}
			return n;
		} catch (NumberFormatException e) {
			throw new IllegalArgumentException(PREFIX + name + " must be an integer in " + min + ".." + max);
		}
	}
}
