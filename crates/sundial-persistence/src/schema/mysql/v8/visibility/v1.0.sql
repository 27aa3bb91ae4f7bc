-- Sundial's visibility database on MySQL 8 (tested on MariaDB 10.11), version 1.0. List
-- queries are answered from the main database's `executions` rows for now; this database
-- carries the version and the mark so that operators' two-database setup scripts run
-- unchanged, and Tier 2's `executions_visibility` lands here.

CREATE TABLE sundial_database (
    kind VARCHAR(16) NOT NULL PRIMARY KEY,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE = InnoDB;
INSERT INTO sundial_database (kind) VALUES ('visibility');
