import { StyledVqError } from '../../src/errors';

/** The StyledVqError a promise rejects with (fails the test if it resolves or throws anything else). */
export async function failure(p: Promise<unknown>): Promise<StyledVqError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StyledVqError);
    return err as StyledVqError;
  }
  throw new Error('expected a StyledVqError');
}
