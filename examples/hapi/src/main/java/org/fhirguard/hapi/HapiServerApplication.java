package org.fhirguard.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.sched.ISchedulerService;
import ca.uhn.fhir.jpa.sched.HapiSchedulerServiceImpl;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.rest.server.ETagSupportEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import jakarta.persistence.EntityManagerFactory;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Qualifier;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.context.PropertyPlaceholderAutoConfiguration;
import org.springframework.boot.autoconfigure.web.servlet.ServletWebServerFactoryAutoConfiguration;
import org.springframework.boot.web.embedded.tomcat.TomcatServletWebServerFactory;
import org.springframework.boot.web.server.WebServerFactoryCustomizer;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/**
 * The smallest standard HAPI FHIR JPA server (R4) on PostgreSQL.
 *
 * No auto-configuration scan: the Spring context is exactly HAPI's own JPA R4 configuration,
 * the beans below (storage settings, the PostgreSQL pool, Hibernate, the transaction manager,
 * the RESTful servlet) and Spring Boot's embedded Tomcat. So nothing starts that a confined
 * server does not need: no Elasticsearch or Lucene (Hibernate Search off), no subscriptions,
 * no package loading, no remote terminology, no JMX, no Quartz beyond HAPI's in-memory
 * scheduler. The only socket the JVM opens to the outside is to PostgreSQL.
 */
@SpringBootConfiguration
@Import({
	PropertyPlaceholderAutoConfiguration.class,
	ServletWebServerFactoryAutoConfiguration.class,
	JpaR4Config.class,
	HapiJpaConfig.class,
	ThreadPoolFactoryConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	SubscriptionChannelConfig.class
})
public class HapiServerApplication {

	private static final Logger ourLog = LoggerFactory.getLogger(HapiServerApplication.class);

	static Settings ourSettings;

	public static void main(String[] args) {
		Settings settings;
		try {
			settings = Settings.fromEnvironment(System.getenv());
		} catch (IllegalArgumentException e) {
			System.err.println("fhirguard-hapi: " + e.getMessage());
			System.exit(2);
			return;
		}
		ourSettings = settings;
		ourLog.info("fhirguard-hapi starting: {}", settings.describe());

		SpringApplication app = new SpringApplication(HapiServerApplication.class);
		app.setWebApplicationType(WebApplicationType.SERVLET);
		app.setRegisterShutdownHook(true);
		Map<String, Object> props = new HashMap<>();
		props.put("spring.main.banner-mode", "off");
		props.put("spring.jmx.enabled", "false");
		props.put("spring.main.allow-bean-definition-overriding", "true");
		props.put("spring.main.allow-circular-references", "true");
		props.put("server.shutdown", "graceful");
		props.put("server.tomcat.threads.max", "32");
		props.put("server.tomcat.threads.min-spare", "4");
		if (settings.unixSocket() == null) {
			props.put("server.address", settings.listenHost());
			props.put("server.port", Integer.toString(settings.listenPort()));
		}
		app.setDefaultProperties(props);
		app.run(args);
	}

	@Bean
	public Settings settings() {
		return ourSettings;
	}

	/**
	 * Where Tomcat writes, and what it listens on.
	 *
	 * Tomcat's base directory (its work directory lives there) and the servlet context's
	 * document root are fixed under java.io.tmpdir ({@code tomcat/} and {@code tomcat/docbase}),
	 * not left to Spring Boot's randomly named temporary directories: nothing is written
	 * anywhere else, and the paths are known in advance.
	 *
	 * {@code unix:/path}: a Unix domain socket instead of TCP (Tomcat's NIO connector, Java 16+),
	 * made {@code rw-rw----} once bound, so the socket's group (fhirguard's proxy) may connect. A
	 * socket file left at that path by an instance that died without closing it (SIGKILL, OOM
	 * exit) would make the bind fail, so it is removed first: the path is this instance's own.
	 */
	@Bean
	public WebServerFactoryCustomizer<TomcatServletWebServerFactory> listenCustomizer(Settings theSettings) {
		return factory -> {
			File base = new File(System.getProperty("java.io.tmpdir"), "tomcat");
			File docBase = new File(base, "docbase");
			if (!docBase.isDirectory() && !docBase.mkdirs()) {
				throw new IllegalStateException("cannot create Tomcat's directory " + docBase);
			}
			factory.setBaseDirectory(base);
			factory.setDocumentRoot(docBase);
			if (theSettings.unixSocket() != null) {
				removeStaleSocket(Path.of(theSettings.unixSocket()));
				factory.addConnectorCustomizers(connector -> {
					connector.setProperty("unixDomainSocketPath", theSettings.unixSocket());
					connector.setProperty("unixDomainSocketPathPermissions", "rw-rw----");
				});
			}
		};
	}

	/** Removes a socket file (and nothing else: not a regular file, directory or link) at PATH. */
	static void removeStaleSocket(Path thePath) {
		try {
			int mode = (Integer) Files.getAttribute(thePath, "unix:mode", LinkOption.NOFOLLOW_LINKS);
			if ((mode & 0170000) == 0140000) {
				Files.delete(thePath);
				ourLog.info("removed a stale socket file at {}", thePath);
			}
		} catch (NoSuchFileException e) {
			// the usual case: nothing there
		} catch (IOException | UnsupportedOperationException e) {
			ourLog.warn("cannot check {} for a stale socket: {}", thePath, e.toString());
		}
	}

	@Bean
	public JpaStorageSettings storageSettings(Settings theSettings) {
		JpaStorageSettings s = new JpaStorageSettings();
		// Nothing in the index lives outside PostgreSQL.
		s.setHibernateSearchIndexFullText(false);
		s.setHibernateSearchIndexSearchParams(false);
		s.setAdvancedHSearchIndexing(false);
		s.setStoreResourceInHSearchIndex(false);
		// References to other servers stay references: HAPI never fetches them.
		s.setAllowExternalReferences(false);
		// Background work that writes: bulk import/export and value set pre-expansion off everywhere;
		// stale search cleanup and reindexing only where the instance may write.
		s.setEnableTaskBulkImportJobExecution(false);
		s.setEnableTaskBulkExportJobExecution(false);
		s.setEnableTaskPreExpandValueSets(false);
		s.setEnableTaskResourceReindexing(!theSettings.readOnly());
		s.setMarkResourcesForReindexingUponSearchParameterChange(!theSettings.readOnly());
		// HAPI answers a search repeated within 60 s from the first one's stored results by
		// default: a client would not see what it just wrote. Every search runs afresh here (its
		// results are still stored, for paging).
		s.setReuseCachedSearchResultsForMillis(null);
		s.setExpungeEnabled(false);
		s.setDeleteExpungeEnabled(false);
		return s;
	}

	/** Replaces JpaConfig's scheduler: a read instance runs no clustered (database-wide) jobs. */
	@Bean
	public ISchedulerService schedulerService(Settings theSettings) {
		HapiSchedulerServiceImpl s = theSettings.readOnly() ? new ReadInstanceScheduler() : new HapiSchedulerServiceImpl();
		s.setDefaultGroup("HAPI");
		return s;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	@Bean(destroyMethod = "close")
	public DataSource dataSource(Settings theSettings) {
		HikariConfig c = new HikariConfig();
		c.setPoolName("hapi-db");
		c.setJdbcUrl(theSettings.jdbcUrl());
		c.setUsername(theSettings.dbUser());
		c.setPassword(theSettings.dbPassword());
		c.setMaximumPoolSize(theSettings.dbPool());
		c.setMinimumIdle(Math.min(2, theSettings.dbPool()));
		// Fail fast and recover when PostgreSQL restarts: no request waits for a connection for long.
		c.setConnectionTimeout(10_000);
		c.setValidationTimeout(3_000);
		c.setInitializationFailTimeout(30_000);
		c.addDataSourceProperty("ApplicationName", theSettings.readOnly() ? "hapi-read" : "hapi-write");
		c.addDataSourceProperty("tcpKeepAlive", "true");
		c.addDataSourceProperty("socketTimeout", "120");
		return new HikariDataSource(c);
	}

	@Bean
	@Primary
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory theBeanFactory,
			FhirContext theFhirContext,
			JpaStorageSettings theStorageSettings,
			DataSource theDataSource,
			Settings theSettings) {
		LocalContainerEntityManagerFactoryBean emf =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(theBeanFactory, theFhirContext, theStorageSettings);
		emf.setPersistenceUnitName("HAPI_PU");
		emf.setDataSource(theDataSource);
		Map<String, Object> p = emf.getJpaPropertyMap();
		p.put("hibernate.dialect", "ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect");
		p.put("hibernate.hbm2ddl.auto", theSettings.schemaAction());
		p.put("hibernate.search.enabled", "false");
		p.put("hibernate.format_sql", "false");
		p.put("hibernate.show_sql", "false");
		p.put("hibernate.jdbc.batch_size", "20");
		p.put("hibernate.order_inserts", "true");
		p.put("hibernate.order_updates", "true");
		p.put("hibernate.cache.use_query_cache", "false");
		p.put("hibernate.cache.use_second_level_cache", "false");
		p.put("hibernate.cache.use_structured_entries", "false");
		p.put("hibernate.cache.use_minimal_puts", "false");
		p.put("hibernate.integration.envers.enabled", "false");
		return emf;
	}

	/** The write instance gives the read role its privileges once the schema is up to date. */
	@Bean
	public Object readRoleGrants(EntityManagerFactory theEntityManagerFactory, DataSource theDataSource, Settings theSettings) {
		return theSettings.grantReadRole() == null ? "no read role to grant" : new ReadRoleGrants(theEntityManagerFactory, theDataSource, theSettings.grantReadRole());
	}

	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory theEntityManagerFactory) {
		return new JpaTransactionManager(theEntityManagerFactory);
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(
			FhirContext theFhirContext,
			@Qualifier("myResourceProvidersR4") ResourceProviderFactory theResourceProviders,
			@Qualifier("mySystemProviderR4") JpaSystemProvider<?, ?> theSystemProvider,
			@Qualifier("mySystemDaoR4") IFhirSystemDao<?, ?> theSystemDao,
			JpaStorageSettings theStorageSettings,
			ISearchParamRegistry theSearchParamRegistry,
			IValidationSupport theValidationSupport,
			DatabaseBackedPagingProvider thePagingProvider,
			ca.uhn.fhir.interceptor.api.IInterceptorService theInterceptorService,
			Settings theSettings) {
		RestfulServer server = new RestfulServer(theFhirContext, theInterceptorService);
		server.setServerName("fhirguard HAPI FHIR example");
		server.registerProviders(theResourceProviders.createProviders());
		server.registerProvider(theSystemProvider);
		server.setPagingProvider(thePagingProvider);
		server.setETagSupport(ETagSupportEnum.ENABLED);
		server.setDefaultPrettyPrint(false);
		// Per base URL: implementation.url is the base the client used (CapabilityStatementPerBase).
		JpaCapabilityStatementProvider capabilities = new CapabilityStatementPerBase(
				server, theSystemDao, theStorageSettings, theSearchParamRegistry, theValidationSupport);
		capabilities.setImplementationDescription("HAPI FHIR JPA server (R4) on PostgreSQL, fhirguard example");
		server.setServerConformanceProvider(capabilities);
		if (theSettings.forwarded()) {
			server.setServerAddressStrategy(new ForwardedAddressStrategy());
		}
		if (theSettings.readOnlyGuard()) {
			server.registerInterceptor(new ReadOnlyGuard());
		}
		String mapping = theSettings.basePath().isEmpty() ? "/*" : theSettings.basePath() + "/*";
		ServletRegistrationBean<RestfulServer> reg = new ServletRegistrationBean<>(server, mapping);
		reg.setName("fhir");
		reg.setLoadOnStartup(1);
		return reg;
	}
}
