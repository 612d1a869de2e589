package org.fhirguard.hapi;

import jakarta.persistence.EntityManagerFactory;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.InitializingBean;

/**
 * What the read role may do, granted by the write instance (the schema's owner) once its
 * schema is up to date, before its server answers: SELECT on every table, and writes only to
 * HAPI's search-result cache (a read instance stores each search there). So a read tier that
 * starts after the write tier is healthy finds its privileges in place, after a first start
 * as after a schema upgrade. The same grants as `postgres.sh grant-read`.
 */
public class ReadRoleGrants implements InitializingBean {

	private static final Logger ourLog = LoggerFactory.getLogger(ReadRoleGrants.class);

	/** HAPI's search-result cache: the only tables a read instance writes (docs/hapi.md says why). */
	static final List<String> READ_ROLE_WRITABLE = List.of("hfj_search", "hfj_search_result", "hfj_search_include");

	static final List<String> READ_ROLE_SEQUENCES = List.of("seq_search", "seq_search_res", "seq_search_inc");

	private final DataSource myDataSource;
	private final String myRole;

	/** The entity manager factory is a parameter so that Hibernate has updated the schema first. */
	public ReadRoleGrants(EntityManagerFactory theSchemaReady, DataSource theDataSource, String theRole) {
		myDataSource = theDataSource;
		myRole = theRole;
	}

	@Override
	public void afterPropertiesSet() throws SQLException, InterruptedException {
		// Another write instance may be serving (a rollout starts this one next to it): grant only
		// what is missing, and retry when PostgreSQL reports a concurrent catalog update.
		for (int attempt = 1; ; attempt++) {
			try {
				grantMissing();
				return;
			} catch (SQLException e) {
				if (attempt >= 5 || !"XX000".equals(e.getSQLState())) {
					throw e;
				}
				ourLog.warn("granting the read role its privileges met a concurrent update ({}); again", e.getMessage());
				Thread.sleep(200L * attempt);
			}
		}
	}

	private void grantMissing() throws SQLException {
		try (Connection c = myDataSource.getConnection();
				Statement s = c.createStatement()) {
			String schema = c.getSchema();
			if (allGranted(c, schema)) {
				ourLog.info("the read role {} has its privileges in schema {} already", myRole, schema);
				return;
			}
			s.execute("GRANT SELECT ON ALL TABLES IN SCHEMA \"" + schema + "\" TO " + myRole);
			for (String t : READ_ROLE_WRITABLE) {
				s.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON \"" + schema + "\"." + t + " TO " + myRole);
			}
			for (String q : READ_ROLE_SEQUENCES) {
				s.execute("GRANT USAGE, SELECT ON SEQUENCE \"" + schema + "\"." + q + " TO " + myRole);
			}
			ourLog.info("granted the read role {} SELECT in schema {} and writes to the search cache {}", myRole, schema, READ_ROLE_WRITABLE);
		}
	}

	/** SELECT on every table of the schema, the cache's writes and its sequences: nothing to grant. */
	private boolean allGranted(Connection c, String schema) throws SQLException {
		String sql = "SELECT"
				+ " (SELECT count(*) FROM pg_tables WHERE schemaname = ? AND NOT has_table_privilege(?, format('%I.%I', schemaname, tablename), 'SELECT')) = 0"
				+ " AND (SELECT bool_and(has_table_privilege(?, format('%I.%I', ?, t), 'INSERT, UPDATE, DELETE')) FROM unnest(?::text[]) t)"
				+ " AND (SELECT bool_and(has_sequence_privilege(?, format('%I.%I', ?, q), 'USAGE')) FROM unnest(?::text[]) q)";
		try (java.sql.PreparedStatement p = c.prepareStatement(sql)) {
			p.setString(1, schema);
			p.setString(2, myRole);
			p.setString(3, myRole);
			p.setString(4, schema);
			p.setArray(5, c.createArrayOf("text", READ_ROLE_WRITABLE.toArray()));
			p.setString(6, myRole);
			p.setString(7, schema);
			p.setArray(8, c.createArrayOf("text", READ_ROLE_SEQUENCES.toArray()));
			try (java.sql.ResultSet r = p.executeQuery()) {
				return r.next() && r.getBoolean(1);
			}
		} catch (SQLException e) {
			// A table or sequence not there yet (a schema older than this server): grant.
			return false;
		}
	}
}
