// asl-validator 4 ships JavaScript only: the one call the tests make.
declare module "asl-validator" {
  interface ValidationResult {
    isValid: boolean;
    errors: { message?: string; [key: string]: unknown }[];
  }
  export default function validator(
    definition: unknown,
    options?: { checkPaths?: boolean; checkArn?: boolean },
  ): ValidationResult;
}
